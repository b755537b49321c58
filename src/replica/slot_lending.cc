#include "replica/slot_lending.h"

#include <absl/strings/str_cat.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

namespace cortex::replica {

namespace asio = net::asio;

namespace {

constexpr size_t kHeadBytes = 12;

void PutU32(unsigned char* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<unsigned char>(v >> (24 - 8 * i));
}

uint32_t GetU32(const unsigned char* in) {
  return (uint32_t{in[0]} << 24) | (uint32_t{in[1]} << 16) | (uint32_t{in[2]} << 8) | in[3];
}

absl::Status Errno(const std::string& what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

absl::StatusOr<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path too long: ", path));
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return address;
}

}  // namespace

// ---- LendingChannel ----

LendingChannel::LendingChannel(asio::io_context& io, int fd) : descriptor_(io, fd) {}

LendingChannel::~LendingChannel() {
  Close();
  for (Outgoing& out : outgoing_) {
    if (out.fd >= 0) ::close(out.fd);
  }
}

void LendingChannel::Close() {
  boost::system::error_code ignored;
  descriptor_.close(ignored);
}

absl::StatusOr<std::pair<std::shared_ptr<LendingChannel>, std::shared_ptr<LendingChannel>>>
LendingChannel::Pair(asio::io_context& io) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0) {
    return Errno("socketpair");
  }
  return std::make_pair(std::make_shared<LendingChannel>(io, fds[0]),
                        std::make_shared<LendingChannel>(io, fds[1]));
}

absl::StatusOr<std::shared_ptr<LendingChannel>> LendingChannel::Connect(asio::io_context& io,
                                                                        const std::string& path) {
  auto address = UnixAddress(path);
  if (!address.ok()) return address.status();
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&*address), sizeof(*address)) != 0) {
    absl::Status failed = Errno(absl::StrCat("connecting to ", path));
    ::close(fd);
    return failed;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return std::make_shared<LendingChannel>(io, fd);
}

absl::Status LendingChannel::Post(const LendingPacket& packet, int fd) {
  if (packet.payload.size() > kMaxPayload) {
    return absl::InvalidArgumentError(
        absl::StrCat("a lending packet's payload of ", packet.payload.size(), " bytes is too big"));
  }
  if (!descriptor_.is_open()) return absl::UnavailableError("the lending channel is closed");
  if (outgoing_.empty()) {
    Sent sent = SendNow(packet, fd);
    if (sent == Sent::kYes) return absl::OkStatus();
    if (sent == Sent::kFailed) {
      absl::Status failed = Errno("sending on the lending channel");
      Close();
      return failed;
    }
  }
  // Behind others, or the socket is full: a copy of the descriptor waits with the packet.
  int copy = fd >= 0 ? ::fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
  if (fd >= 0 && copy < 0) return Errno("dup");
  outgoing_.push_back({packet, copy});
  if (!flushing_) {
    flushing_ = true;
    asio::co_spawn(
        descriptor_.get_executor(), [self = shared_from_this()] { return self->Flush(); },
        asio::detached);
  }
  return absl::OkStatus();
}

LendingChannel::Sent LendingChannel::SendNow(const LendingPacket& packet, int fd) {
  unsigned char head[kHeadBytes];
  PutU32(head, static_cast<uint32_t>(packet.type));
  PutU32(head + 4, static_cast<uint32_t>(packet.slot));
  PutU32(head + 8, static_cast<uint32_t>(packet.process));
  iovec parts[2] = {{head, kHeadBytes},
                    {const_cast<char*>(packet.payload.data()), packet.payload.size()}};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr message{};
  message.msg_iov = parts;
  message.msg_iovlen = packet.payload.empty() ? 1 : 2;
  if (fd >= 0) {
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    cmsghdr* rights = CMSG_FIRSTHDR(&message);
    rights->cmsg_level = SOL_SOCKET;
    rights->cmsg_type = SCM_RIGHTS;
    rights->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(rights), &fd, sizeof(int));
  }
  for (;;) {
    ssize_t sent = ::sendmsg(descriptor_.native_handle(), &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent >= 0) return Sent::kYes;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK ? Sent::kWouldBlock : Sent::kFailed;
  }
}

asio::awaitable<void> LendingChannel::Flush() {
  while (!outgoing_.empty() && descriptor_.is_open()) {
    boost::system::error_code ec;
    co_await descriptor_.async_wait(asio::posix::descriptor_base::wait_write,
                                    asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !descriptor_.is_open()) break;
    Sent sent = SendNow(outgoing_.front().packet, outgoing_.front().fd);
    if (sent == Sent::kWouldBlock) continue;
    if (outgoing_.front().fd >= 0) ::close(outgoing_.front().fd);
    outgoing_.pop_front();
    if (sent == Sent::kFailed) Close();
  }
  flushing_ = false;
}

asio::awaitable<absl::StatusOr<LendingPacket>> LendingChannel::Receive() {
  std::string buffer(kHeadBytes + kMaxPayload, '\0');
  for (;;) {
    if (!descriptor_.is_open()) co_return absl::UnavailableError("the lending channel is closed");
    iovec part{buffer.data(), buffer.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
    msghdr message{};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    ssize_t got = ::recvmsg(descriptor_.native_handle(), &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      boost::system::error_code ec;
      co_await descriptor_.async_wait(asio::posix::descriptor_base::wait_read,
                                      asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return absl::UnavailableError("the lending channel is closed");
      continue;
    }
    if (got < 0) co_return Errno("receiving on the lending channel");
    // Every descriptor that came is ours to close, whatever the packet turns out to be.
    std::vector<int> fds;
    for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < n; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        fds.push_back(fd);
      }
    }
    auto close_all = [&fds] {
      for (int fd : fds) ::close(fd);
    };
    if (got == 0) {
      close_all();
      co_return absl::UnavailableError("the lending peer has gone");
    }
    const auto* head = reinterpret_cast<const unsigned char*>(buffer.data());
    uint32_t type = got >= static_cast<ssize_t>(kHeadBytes) ? GetU32(head) : 0;
    bool known = type >= static_cast<uint32_t>(LendingMessage::kLend) &&
                 type <= static_cast<uint32_t>(LendingMessage::kReport);
    bool lend = type == static_cast<uint32_t>(LendingMessage::kLend);
    if (!known || (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 ||
        fds.size() != (lend ? 1u : 0u)) {
      close_all();
      co_return absl::DataLossError(absl::StrCat("a malformed lending packet (", got, " bytes, ",
                                                 fds.size(), " descriptors)"));
    }
    LendingPacket packet;
    packet.type = static_cast<LendingMessage>(type);
    packet.slot = static_cast<int>(GetU32(head + 4));
    packet.process = static_cast<int>(GetU32(head + 8));
    packet.payload.assign(buffer.data() + kHeadBytes, static_cast<size_t>(got) - kHeadBytes);
    packet.fd = lend ? fds[0] : -1;
    co_return packet;
  }
}

// ---- SlotLender ----

SlotLender::SlotLender(asio::io_context& io, SlotQueue& queue, SlotSockets& slots,
                       std::function<void(const nlohmann::json&)> on_report)
    : io_(io),
      queue_(queue),
      slots_(slots),
      on_report_(std::move(on_report)),
      all_back_(io, std::chrono::steady_clock::time_point::max()) {
  queue_.OnFree([this] { LendFreeSlots(); });
}

SlotLender::~SlotLender() {
  *alive_ = false;
  queue_.OnFree(nullptr);
  Close();
}

absl::Status SlotLender::Listen(const std::string& path) {
  auto address = UnixAddress(path);
  if (!address.ok()) return address.status();
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Errno("socket");
  ::unlink(path.c_str());  // a stale socket of an earlier run
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&*address), sizeof(*address)) != 0 ||
      ::listen(fd, 4) != 0) {
    absl::Status failed = Errno(absl::StrCat("listening on ", path));
    ::close(fd);
    return failed;
  }
  path_ = path;
  listener_ = std::make_unique<asio::posix::stream_descriptor>(io_, fd);
  asio::co_spawn(io_, Accept(), asio::detached);
  return absl::OkStatus();
}

asio::awaitable<void> SlotLender::Accept() {
  std::shared_ptr<bool> alive = alive_;
  while (listener_ && listener_->is_open()) {
    boost::system::error_code ec;
    co_await listener_->async_wait(asio::posix::descriptor_base::wait_read,
                                   asio::redirect_error(asio::use_awaitable, ec));
    if (!*alive || ec || !listener_ || !listener_->is_open()) co_return;
    int fd = ::accept4(listener_->native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;
    if (channel_ || recalling_) {  // one borrower at a time, and none while draining
      ::close(fd);
      continue;
    }
    Serve(std::make_shared<LendingChannel>(io_, fd));
  }
}

void SlotLender::Serve(std::shared_ptr<LendingChannel> channel) {
  channel_ = std::move(channel);
  asio::co_spawn(io_, Receive(channel_), asio::detached);
  LendFreeSlots();
}

void SlotLender::LendFreeSlots() {
  if (!channel_ || recalling_) return;
  for (int slot = queue_.TryAcquire(); slot >= 0; slot = queue_.TryAcquire()) {
    lent_.insert(slot);
    if (!channel_
             ->Post({LendingMessage::kLend, slot, slots_.process_of(slot), {}},
                    slots_.socket(slot).native_handle())
             .ok()) {
      DropBorrower();  // it has gone: Receive would see it next
      return;
    }
  }
}

asio::awaitable<void> SlotLender::Receive(std::shared_ptr<LendingChannel> channel) {
  std::shared_ptr<bool> alive = alive_;
  for (;;) {
    absl::StatusOr<LendingPacket> packet = co_await channel->Receive();
    if (!*alive || channel != channel_) co_return;  // destroyed, or the borrower dropped meanwhile
    if (packet.ok() && packet->fd >= 0) ::close(packet->fd);  // a borrower lends nothing
    if (!packet.ok()) {
      DropBorrower();
      co_return;
    }
    int slot = packet->slot;
    switch (packet->type) {
      case LendingMessage::kReturn:
        if (lent_.erase(slot) > 0) queue_.Release(slot);
        break;
      case LendingMessage::kBroken:
        if (lent_.erase(slot) > 0) slots_.CloseSlot(slot);
        break;
      case LendingMessage::kReport: {
        auto report = nlohmann::json::parse(packet->payload, nullptr, /*allow_exceptions=*/false);
        if (!report.is_discarded() && on_report_) on_report_(report);
        break;
      }
      default:  // a borrower sends nothing else
        std::cerr << "slot lender: unexpected packet type " << static_cast<int>(packet->type)
                  << " from the borrower; letting it go" << std::endl;
        DropBorrower();
        co_return;
    }
    if (recalling_ && lent_.empty()) all_back_.cancel();
  }
}

void SlotLender::SlotClosed(int slot) {
  if (lent_.erase(slot) == 0) return;
  channel_->Post({LendingMessage::kRevoke, slot, slots_.process_of(slot), {}}).IgnoreError();
  if (recalling_ && lent_.empty()) all_back_.cancel();
}

void SlotLender::DropBorrower() {
  if (!channel_) return;
  channel_->Close();
  channel_.reset();
  // A request of the borrower's may be half done on any of these: they are not the replica's
  // to use again.
  std::set<int> lent = std::move(lent_);
  lent_.clear();
  for (int slot : lent) slots_.CloseSlot(slot);
  all_back_.cancel();
}

asio::awaitable<void> SlotLender::Recall(std::chrono::milliseconds grace) {
  std::shared_ptr<bool> alive = alive_;
  recalling_ = true;
  if (!channel_) co_return;
  if (!lent_.empty()) {
    channel_->Post({LendingMessage::kRecall, -1, -1, {}}).IgnoreError();
    all_back_.expires_after(grace);
    boost::system::error_code ignored;
    co_await all_back_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    if (!*alive) co_return;
  }
  DropBorrower();
}

void SlotLender::Close() {
  if (listener_) {
    boost::system::error_code ignored;
    listener_->close(ignored);
    listener_.reset();
    ::unlink(path_.c_str());
  }
  DropBorrower();
}

// ---- LentSlots ----

struct LentSlots::Slot {
  int process = 0;
  Socket socket;
  Slot(asio::io_context& io, int fd, int process)
      : process(process), socket(io, asio::local::stream_protocol(), fd) {}
};

LentSlots::LentSlots(asio::io_context& io, SlotQueue& queue,
                     std::shared_ptr<LendingChannel> channel)
    : io_(io), queue_(queue), channel_(std::move(channel)) {
  queue_.OnFree([this] { ReturnFreeSlots(); });
}

LentSlots::~LentSlots() {
  *alive_ = false;
  queue_.OnFree(nullptr);
  channel_->Close();
}

asio::awaitable<void> LentSlots::Run() {
  std::shared_ptr<bool> alive = alive_;
  std::shared_ptr<LendingChannel> channel = channel_;
  for (;;) {
    absl::StatusOr<LendingPacket> packet = co_await channel->Receive();
    if (!*alive) {
      if (packet.ok() && packet->fd >= 0) ::close(packet->fd);
      co_return;
    }
    if (!packet.ok()) break;
    int slot = packet->slot;
    switch (packet->type) {
      case LendingMessage::kLend: {
        if (slot < 0 || slot > 1 << 20) {  // ids count up from 0, one per worker connection
          ::close(packet->fd);
          continue;
        }
        if (slots_.size() <= static_cast<size_t>(slot)) slots_.resize(slot + 1);
        Drop(slot);  // not held twice
        slots_[slot] = std::make_unique<Slot>(io_, packet->fd, packet->process);
        queue_.Add(slot);
        break;
      }
      case LendingMessage::kRevoke:
        Drop(slot);
        break;
      case LendingMessage::kRecall:
        recalled_ = true;
        ReturnFreeSlots();
        break;
      default:
        break;  // a lender sends nothing else; ignored
    }
  }
  gone_ = true;
  channel_->Close();
  for (size_t slot = 0; slot < slots_.size(); ++slot) Drop(static_cast<int>(slot));
}

void LentSlots::Report(const nlohmann::json& report) {
  if (gone_) return;
  absl::Status posted = channel_->Post({LendingMessage::kReport, -1, -1, report.dump()});
  if (!posted.ok()) std::cerr << "lent slots: a report was not sent: " << posted << std::endl;
}

void LentSlots::ReturnFreeSlots() {
  if (!recalled_ || gone_) return;
  for (int slot = queue_.TryAcquire(); slot >= 0; slot = queue_.TryAcquire()) {
    int process = slots_[slot]->process;
    Drop(slot);
    channel_->Post({LendingMessage::kReturn, slot, process, {}})
        .IgnoreError();  // Run sees a failure
  }
}

void LentSlots::Drop(int slot) {
  if (slot < 0 || static_cast<size_t>(slot) >= slots_.size() || !slots_[slot]) return;
  queue_.Remove(slot);
  boost::system::error_code ignored;
  slots_[slot]->socket.close(ignored);  // our copy only: the lender's is untouched
  slots_[slot].reset();
}

LentSlots::Socket& LentSlots::socket(int slot) { return slots_[slot]->socket; }

int LentSlots::process_of(int slot) const { return slots_[slot] ? slots_[slot]->process : -1; }

void LentSlots::CloseSlot(int slot) {
  if (slot < 0 || static_cast<size_t>(slot) >= slots_.size() || !slots_[slot]) return;
  int process = slots_[slot]->process;
  Drop(slot);
  if (!gone_) channel_->Post({LendingMessage::kBroken, slot, process, {}}).IgnoreError();
}

size_t LentSlots::held() const {
  size_t n = 0;
  for (const auto& slot : slots_) n += slot != nullptr;
  return n;
}

}  // namespace cortex::replica
