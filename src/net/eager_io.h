// Reads and writes that first do what the socket allows at once and wait only for the rest.
//
// An asynchronous operation completes through the event loop even when the socket already holds
// the data, and on a basic_stream it also arms the stream's deadline timer. Under load a
// keep-alive connection's next request is usually buffered in full when we look, and a small
// answer fits the send buffer: doing those non-blocking steps directly skips a posted completion,
// a polling round of the loop and a timer armed and cancelled (each a system call on the
// reactor's timerfd). Whatever is left (a request still arriving, a full send buffer) goes to the
// asynchronous operation, under the stream's deadline as before.
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

// http::async_read (the rest of a message), after parsing what the socket already holds.
template <class Parser>
asio::awaitable<void> EagerRead(Stream& stream, beast::flat_buffer& buffer, Parser& parser,
                                boost::system::error_code& ec) {
  MakeNonBlocking(stream.socket(), ec);
  if (!ec) http::read(stream.socket(), buffer, parser, ec);
  if (ec != asio::error::would_block) co_return;
  ec = {};
  co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
}

// http::async_write, after sending what the send buffer takes at once.
template <bool isRequest, class Body, class Fields>
asio::awaitable<void> EagerWrite(Stream& stream,
                                 const http::message<isRequest, Body, Fields>& message,
                                 boost::system::error_code& ec) {
  http::serializer<isRequest, Body, Fields> serializer(message);
  MakeNonBlocking(stream.socket(), ec);
  if (!ec) http::write(stream.socket(), serializer, ec);
  if (ec != asio::error::would_block) co_return;
  ec = {};
  co_await http::async_write(stream, serializer, asio::redirect_error(asio::use_awaitable, ec));
}

// asio::async_write of a buffer sequence on a plain socket, after sending what it takes at once.
template <class Socket>
asio::awaitable<void> EagerWrite(Socket& socket, std::span<const asio::const_buffer> buffers,
                                 boost::system::error_code& ec) {
  MakeNonBlocking(socket, ec);
  size_t sent = ec ? 0 : asio::write(socket, buffers, ec);
  if (ec != asio::error::would_block) co_return;
  ec = {};
  beast::buffers_suffix<std::span<const asio::const_buffer>> rest(buffers);
  rest.consume(sent);
  co_await asio::async_write(socket, rest, asio::redirect_error(asio::use_awaitable, ec));
}

// asio::async_read filling `buffer`, after taking what the socket already holds.
template <class Socket>
asio::awaitable<void> EagerRead(Socket& socket, asio::mutable_buffer buffer,
                                boost::system::error_code& ec) {
  MakeNonBlocking(socket, ec);
  size_t got = ec ? 0 : asio::read(socket, buffer, ec);
  if (ec != asio::error::would_block) co_return;
  ec = {};
  co_await asio::async_read(socket, buffer + got, asio::redirect_error(asio::use_awaitable, ec));
}

}  // namespace cortex::net
