#include "replica/dispatcher.h"

#include <absl/strings/str_cat.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "common/status.h"
#include "net/eager_io.h"

namespace cortex::replica {

namespace asio = net::asio;

namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// No one waits for the answer (the gateway gave up, the client left): 499 as nginx logs it; the
// client never sees it.
absl::Status ClientLeft() {
  return WithHttpStatus(absl::CancelledError("the client left before its turn"), 499);
}

}  // namespace

Dispatcher::Dispatcher(asio::io_context& io, SlotQueue& queue, SlotSockets& slots,
                       FrontMetrics& metrics, std::optional<BatchingOptions> batching)
    : io_(io), queue_(queue), slots_(slots), metrics_(metrics), batch_wake_(io) {
  if (batching) batcher_.emplace(batching->max_batch_size, batching->interval);
}

void Dispatcher::Start() {
  if (batcher_) asio::co_spawn(io_, DispatchBatches(), asio::detached);
}

asio::awaitable<int> Dispatcher::AcquireSlot() {
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(int)>(
      [this](auto handler) {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        queue_.Acquire([this, shared](int slot) {
          asio::post(io_, [shared, slot]() mutable { std::move (*shared)(slot); });  // one-shot
        });
      },
      asio::use_awaitable);
}

asio::awaitable<absl::StatusOr<WorkerResponse>> Dispatcher::Run(const RequestHead& head,
                                                                std::string_view body,
                                                                net::ClientWatch& client,
                                                                Clock::time_point admitted) {
  if (batcher_) {
    absl::StatusOr<WorkerResponse> result = co_await RunBatched(head, body, client, admitted);
    co_return result;
  }
  // Alone: a slot of its own, here rather than in a coroutine of its own (one frame less).
  int slot = queue_.TryAcquire();  // the common case needs no trip through the queue
  if (slot < 0) slot = co_await AcquireSlot();
  metrics_.Queued(SecondsSince(admitted));
  if (slot < 0) co_return absl::UnavailableError("replica is shutting down");
  if (client.gone()) {  // the slot goes to the next request
    queue_.Release(slot);
    metrics_.Abandoned();
    co_return ClientLeft();
  }
  ++running_;
  std::string prefix = EncodeRequestPrefix(head, body.size());
  std::array<asio::const_buffer, 2> out = {asio::buffer(prefix), asio::buffer(body)};
  unsigned char lengths[kFrameLengthsBytes];
  absl::StatusOr<std::string> rest = co_await RoundTrip(slot, out, lengths);
  --running_;
  if (!rest.ok()) co_return rest.status();
  auto decoded = DecodeResponse(lengths, *std::move(rest));
  if (!decoded.ok()) {
    co_return WithHttpStatus(absl::DataLossError("worker process sent a malformed response"), 502);
  }
  co_return decoded;
}

asio::awaitable<absl::StatusOr<WorkerResponse>> Dispatcher::RunBatched(const RequestHead& head,
                                                                       std::string_view body,
                                                                       net::ClientWatch& client,
                                                                       Clock::time_point admitted) {
  auto pending = std::make_shared<Pending>(io_);
  pending->head = &head;
  pending->body = body;
  pending->client = &client;
  pending->admitted = admitted;
  batcher_->Push(pending, admitted);
  // The dispatcher waits for a first request, or for the batch to fill.
  if (batcher_->size() == 1 || batcher_->full()) batch_wake_.cancel();
  boost::system::error_code ec;
  while (!pending->completed) {  // Complete() cancels the wait
    co_await pending->done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return std::move(pending->result);
}

void Dispatcher::Complete(Pending& pending, absl::StatusOr<WorkerResponse> result) {
  pending.result = std::move(result);
  pending.completed = true;
  pending.done.cancel();
}

asio::awaitable<void> Dispatcher::DispatchBatches() {
  using Clock = std::chrono::steady_clock;
  auto wait_until = [this](Clock::time_point when) -> asio::awaitable<void> {
    batch_wake_.expires_at(when);
    boost::system::error_code ec;
    co_await batch_wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  };
  while (true) {
    while (batcher_->empty()) co_await wait_until(Clock::time_point::max());
    // A free slot first: while every slot is busy, the waiting requests fill the next batch.
    int slot = queue_.TryAcquire();
    if (slot < 0) slot = co_await AcquireSlot();
    if (slot < 0) {
      for (auto& pending : batcher_->TakeAll()) {
        Complete(*pending, absl::UnavailableError("replica is shutting down"));
      }
      continue;
    }
    while (!batcher_->Ready(Clock::now())) co_await wait_until(*batcher_->Deadline());
    std::vector<std::shared_ptr<Pending>> dropped;
    std::vector<std::shared_ptr<Pending>> batch =
        batcher_->Take([](const auto& pending) { return pending->client->gone(); }, dropped);
    for (auto& pending : dropped) {
      metrics_.Abandoned();
      Complete(*pending, ClientLeft());
    }
    if (batch.empty()) {
      queue_.Release(slot);
      continue;
    }
    asio::co_spawn(io_, RunBatch(slot, std::move(batch)), asio::detached);
  }
}

asio::awaitable<void> Dispatcher::RunBatch(int slot, std::vector<std::shared_ptr<Pending>> batch) {
  std::vector<RequestHead> heads;
  std::vector<size_t> sizes;
  for (const auto& pending : batch) {
    metrics_.Queued(SecondsSince(pending->admitted));
    heads.push_back(*pending->head);
    sizes.push_back(pending->body.size());
  }
  metrics_.Batch(batch.size());
  std::string prefix = EncodeBatchPrefix(heads, sizes);
  std::vector<asio::const_buffer> out = {asio::buffer(prefix)};
  for (const auto& pending : batch) out.push_back(asio::buffer(pending->body));
  running_ += static_cast<int64_t>(batch.size());
  unsigned char lengths[kFrameLengthsBytes];
  absl::StatusOr<std::string> rest = co_await RoundTrip(slot, out, lengths);
  running_ -= static_cast<int64_t>(batch.size());
  // (No conditional expression here: GCC 12 destroys its result twice inside a coroutine.)
  absl::StatusOr<std::vector<WorkerResponse>> responses = absl::UnknownError("no response");
  if (!rest.ok()) {
    responses = rest.status();
  } else {
    responses = DecodeBatchResponse(lengths, *rest, batch.size());
    if (!responses.ok()) {
      responses = WithHttpStatus(
          absl::DataLossError(absl::StrCat("worker process sent a malformed batch response: ",
                                           responses.status().message())),
          502);
    }
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    if (responses.ok()) {
      Complete(*batch[i], std::move((*responses)[i]));
    } else {
      Complete(*batch[i], responses.status());
    }
  }
}

asio::awaitable<absl::StatusOr<std::string>> Dispatcher::RoundTrip(
    int slot, std::span<const asio::const_buffer> out, unsigned char (&lengths)[8]) {
  auto& socket = slots_.socket(slot);
  boost::system::error_code ec;
  co_await net::EagerWrite(socket, out, ec);
  // The answer cannot be there yet: wait for it (reading now would only fail with EAGAIN), then
  // take the lengths and, for a small answer, all the rest in one read.
  if (!ec) {
    co_await socket.async_wait(SlotSockets::Socket::wait_read,
                               asio::redirect_error(asio::use_awaitable, ec));
  }
  std::array<char, 1024> first;
  size_t got = 0;
  if (!ec) net::MakeNonBlocking(socket, ec);
  if (!ec) got = socket.read_some(asio::buffer(first), ec);
  if (net::WouldBlock(ec)) ec = {};  // woken for nothing: the reads below wait
  size_t head = std::min(got, kFrameLengthsBytes);
  std::memcpy(lengths, first.data(), head);
  std::string rest(first.data() + head, got - head);
  if (!ec) co_await net::EagerRead(socket, asio::buffer(lengths + head, sizeof lengths - head), ec);
  absl::StatusOr<uint32_t> rest_length =
      ec ? absl::StatusOr<uint32_t>(absl::UnavailableError(ec.message()))
         : FrameRestLength(lengths);
  if (rest_length.ok() && rest.size() > *rest_length) {
    rest_length = absl::DataLossError("worker sent more than one frame");
  }
  if (rest_length.ok()) {
    size_t have = rest.size();
    rest.resize(*rest_length);
    co_await net::EagerRead(socket, asio::buffer(rest.data() + have, rest.size() - have), ec);
  }
  if (!rest_length.ok() || ec) {
    // The slot is broken (its process died, or it wrote garbage): it leaves the pool.
    slots_.CloseSlot(slot);
    std::string what =
        ec ? std::string("exited while handling the request")
           : absl::StrCat("sent a malformed answer (", rest_length.status().message(), ")");
    co_return WithHttpStatus(absl::UnavailableError(absl::StrCat(
                                 "worker process p", slots_.process_of(slot), " ", what)),
                             502);
  }
  queue_.Release(slot);
  co_return rest;
}

}  // namespace cortex::replica
