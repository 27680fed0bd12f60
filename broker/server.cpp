#include "broker/server.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>

#include "broker/sqlite_store.hpp"

namespace claw::broker {
namespace {

// Messages taken from the socket before the loop commits and sends; bounds the time between
// two looks at the writer and the clock.
constexpr int kMaxMessagesPerTurn = 4096;
// The longest the loop sleeps with nothing due, so that it notices a stop request.
constexpr std::int64_t kMaxSleepMs = 200;

std::string UpperCase(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Now ClockNow() {
  using namespace std::chrono;
  return Now{duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count(),
             duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count()};
}

Result<std::unique_ptr<Server>> Server::Start(const BrokerConfig& config) {
  auto server = std::make_unique<Server>(PrivateTag{});
  server->config_ = config;
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) return Fail("cannot create data directory " + config.data_dir + ": " + ec.message());
  const std::string lock_path = config.data_dir + "/LOCK";
  server->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (server->lock_fd_ < 0 || ::flock(server->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return Fail("data directory " + config.data_dir + " is in use by another broker (cannot lock " +
                lock_path + ")");
  }
  const std::string db_path = config.data_dir + "/claw.db";
  const SqliteOptions options{UpperCase(config.durability)};
  auto writer_store = SqliteJobStore::Open(db_path, options);
  if (!writer_store) return std::unexpected(writer_store.error());
  auto epoch = (*writer_store)->NextEpoch();
  if (!epoch) return std::unexpected(epoch.error());
  auto reader = SqliteJobStore::Open(db_path, options);
  if (!reader) return std::unexpected(reader.error());
  server->reader_ = std::move(*reader);
  server->writer_ = std::make_unique<StoreWriter>(server->context_, std::move(*writer_store));
  server->core_ =
      std::make_unique<Core>(config.core, *server->reader_, *epoch, std::random_device{}());
  const Now now = ClockNow();
  if (auto s = server->core_->Recover(now); !s) return std::unexpected(s.error());
  // Limits: a body may hold a payload at the limit plus its fields; ZeroMQ drops a peer that
  // sends a larger message, and the codec refuses a larger body with TOO_LARGE.
  server->limits_.max_body_bytes = config.core.max_payload_bytes + 64 * 1024;
  auto router = wire::BindRouter(server->context_, config.bind,
                                 static_cast<std::int64_t>(server->limits_.max_body_bytes) * 2);
  if (!router) return std::unexpected(router.error());
  server->router_ = std::move(*router);
  spdlog::info("listening on {}, data in {} (durability {}, epoch {})", server->endpoint(),
               config.data_dir, config.durability, *epoch);
  return server;
}

Server::~Server() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

std::string Server::endpoint() { return wire::BoundEndpoint(router_); }

Status Server::Run(const std::atomic<bool>& stop) {
  zmq::pollitem_t items[] = {{router_.handle(), 0, ZMQ_POLLIN, 0},
                             {writer_->socket().handle(), 0, ZMQ_POLLIN, 0}};
  while (!stop.load()) {
    const std::int64_t due = core_->MillisUntilDue(ClockNow());
    const std::int64_t wait = due < 0 ? kMaxSleepMs : std::min(due, kMaxSleepMs);
    try {
      zmq::poll(items, 2, std::chrono::milliseconds(wait));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) return Fail(std::string("poll failed: ") + e.what());
      continue;
    }
    Now now = ClockNow();
    if (items[1].revents & ZMQ_POLLIN) {
      if (auto result = writer_->TakeResult()) core_->OnBatchDone(*result, now);
    }
    for (int i = 0; i < kMaxMessagesPerTurn; ++i) {
      auto in = wire::ReceiveInbound(router_, limits_);
      if (!in) break;
      if (in->message) {
        core_->OnInbound(in->from, std::move(*in->message), now);
      } else {
        core_->OnMalformed(in->from, in->message.error(), now);
      }
    }
    core_->OnTick(now);
    if (auto batch = core_->TakeBatch()) writer_->Submit(std::move(*batch));
    Flush(now);
  }
  // Commit what is pending before leaving, so a clean stop keeps every change.
  spdlog::info("stopping: committing pending changes");
  while (true) {
    if (core_->batch_in_flight()) core_->OnBatchDone(writer_->WaitResult(), ClockNow());
    auto batch = core_->TakeBatch();
    Flush(ClockNow());
    if (!batch) break;
    writer_->Submit(std::move(*batch));
  }
  return {};
}

void Server::Flush(Now now) {
  // Sending may reveal a dead peer, and the Core's reaction may produce more to send; each
  // round sends what the previous one produced, and a dead peer is removed only once.
  for (int round = 0; round < 8 && !core_->outbox().empty(); ++round) {
    std::vector<Outgoing> out;
    out.swap(core_->outbox());
    for (const auto& message : out) {
      switch (wire::SendTo(router_, message.to, message.frames)) {
        case wire::SendOutcome::kSent:
          break;
        case wire::SendOutcome::kUnreachable:
          core_->OnUnreachable(message.to, now);
          break;
        case wire::SendOutcome::kWouldBlock:
          spdlog::warn("peer is not reading (send queue full); a message to it was dropped");
          break;
      }
    }
  }
}

}  // namespace claw::broker
