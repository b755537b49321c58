// Reads and writes that first do one non-blocking step on the socket and wait only for the rest.
//
// An asynchronous operation completes through the event loop even when the socket could do the
// work at once, and on a basic_stream it also arms and cancels the stream's deadline timer (a
// system call on the reactor's timerfd). A small answer nearly always fits the send buffer, and a
// request's body is usually in once its head is: one non-blocking send or receive done directly
// skips the posted completion, a polling round of the loop and the timer. Only one step is done
// that way, so a large transfer to a fast peer still yields to the event loop between chunks; the
// rest (a full send buffer, bytes still arriving) goes to the asynchronous operation, under the
// stream's deadline as before.
//
// Each sets `ec` (it does not keep an earlier error). The socket is put in non-blocking mode for
// its synchronous operations (asynchronous ones are unaffected); a socket used with these helpers
// must not be used with blocking calls.
#pragma once

#include <span>

#include "net/asio.h"

namespace cortex::net {

template <class Socket>
void MakeNonBlocking(Socket& socket, boost::system::error_code& ec) {
  ec = {};
  if (!socket.non_blocking()) socket.non_blocking(true, ec);  // once: later calls are free
}

// The error of a non-blocking step that found nothing to do (EAGAIN, EWOULDBLOCK).
inline bool WouldBlock(const boost::system::error_code& ec) {
  return ec == asio::error::would_block || ec == asio::error::try_again;
}

// http::async_read (the rest of a message whose head is parsed), after one receive.
template <class Parser>
asio::awaitable<void> EagerRead(Stream& stream, beast::flat_buffer& buffer, Parser& parser,
                                boost::system::error_code& ec) {
  MakeNonBlocking(stream.socket(), ec);
  if (!ec) http::read_some(stream.socket(), buffer, parser, ec);
  if (WouldBlock(ec)) ec = {};
  if (ec || parser.is_done()) co_return;
  co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
}

// http::async_write, after one send.
template <bool isRequest, class Body, class Fields>
asio::awaitable<void> EagerWrite(Stream& stream,
                                 const http::message<isRequest, Body, Fields>& message,
                                 boost::system::error_code& ec) {
  http::serializer<isRequest, Body, Fields> serializer(message);
  MakeNonBlocking(stream.socket(), ec);
  if (!ec) http::write_some(stream.socket(), serializer, ec);
  if (WouldBlock(ec)) ec = {};
  if (ec || serializer.is_done()) co_return;
  co_await http::async_write(stream, serializer, asio::redirect_error(asio::use_awaitable, ec));
}

// asio::async_write of a buffer sequence on a plain socket, after one send.
template <class Socket>
asio::awaitable<void> EagerWrite(Socket& socket, std::span<const asio::const_buffer> buffers,
                                 boost::system::error_code& ec) {
  MakeNonBlocking(socket, ec);
  size_t sent = ec ? 0 : socket.write_some(buffers, ec);
  if (WouldBlock(ec)) ec = {};
  beast::buffers_suffix<std::span<const asio::const_buffer>> rest(buffers);
  rest.consume(sent);
  if (ec || beast::buffer_bytes(rest) == 0) co_return;
  co_await asio::async_write(socket, rest, asio::redirect_error(asio::use_awaitable, ec));
}

// asio::async_read filling `buffer` on a plain socket, after one receive.
template <class Socket>
asio::awaitable<void> EagerRead(Socket& socket, asio::mutable_buffer buffer,
                                boost::system::error_code& ec) {
  MakeNonBlocking(socket, ec);
  if (buffer.size() == 0 || ec) co_return;
  size_t got = socket.read_some(buffer, ec);
  if (WouldBlock(ec)) ec = {};
  if (ec || got == buffer.size()) co_return;
  co_await asio::async_read(socket, buffer + got, asio::redirect_error(asio::use_awaitable, ec));
}

}  // namespace cortex::net
