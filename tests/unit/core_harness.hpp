// A Core driven directly by tests: messages and a fake clock in, replies, dispatches and commits
// out. The store is a real SQLite file; commits happen when a test says so, which is how the
// tests see what waits for the disk and what does not.
#pragma once

#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <vector>

#include "broker/core.hpp"
#include "broker/sqlite_store.hpp"
#include "tests/unit/temp_dir.hpp"

namespace claw::broker::testing {

using wire::JobState;
using wire::StatusCode;

inline CoreConfig TestConfig() {
  CoreConfig config;
  config.heartbeat_ms = 1000;
  config.liveness = 3;
  config.backoff_ms = 1000;
  config.max_backoff_ms = 8000;
  config.jitter_percent = 0;  // exact retry times
  config.max_attempts = 3;
  config.job_timeout_ms = 10'000;
  return config;
}

class Harness {
 public:
  explicit Harness(CoreConfig config = TestConfig()) {
    spdlog::set_level(spdlog::level::warn);
    Open(config);
  }

  void Open(CoreConfig config = TestConfig()) {
    core_.reset();
    auto store = SqliteJobStore::Open(dir_.File("claw.db"), {});
    REQUIRE_MESSAGE(store.has_value(), store.error().message);
    store_ = std::move(*store);
    auto epoch = store_->NextEpoch();
    REQUIRE(epoch.has_value());
    core_ = std::make_unique<Core>(config, *store_, *epoch, 42);
    REQUIRE(core_->Recover(now_).has_value());
  }

  Core& core() { return *core_; }
  JobStore& store() { return *store_; }
  Now now() const { return now_; }
  wire::ClusterInfo Cluster() const { return core_->Cluster(now_); }

  void Commit() {
    while (auto batch = core_->TakeAll()) core_->OnBatchDone(store_->Apply(*batch), now_);
  }

  // Moves the clock on and lets the core act on what became due.
  void Advance(std::int64_t ms) {
    now_.mono_ms += ms;
    now_.wall_ms += ms;
    core_->OnTick(now_);
  }

  std::vector<Outgoing> Take() {
    std::vector<Outgoing> out;
    out.swap(core_->outbox());
    return out;
  }

  void Send(const std::string& from, wire::ClientRequest request) {
    core_->OnInbound(wire::Envelope{from, false}, wire::Inbound{std::move(request)}, now_);
  }
  void SendWorker(const std::string& from, wire::WorkerMessage message) {
    core_->OnInbound(wire::Envelope{from, false}, wire::Inbound{std::move(message)}, now_);
  }

  // Submits and commits; returns the ACCEPTED reply.
  wire::ClientReply Submit(wire::SubmitRequest request) {
    request.rid = ++rid_;
    Send("client", request);
    Commit();
    auto replies = RepliesTo("client");
    REQUIRE(replies.size() == 1);
    return replies[0];
  }
  std::string SubmitId(const std::string& type, std::uint32_t priority = 5) {
    wire::SubmitRequest r;
    r.job.type = type;
    r.job.payload = "payload-" + std::to_string(rid_ + 1);
    r.job.priority = priority;
    auto reply = Submit(r);
    REQUIRE(reply.status == StatusCode::kAccepted);
    return *reply.id;
  }
  wire::ClientReply Ask(wire::ClientRequest request) {
    Send("client", std::move(request));
    auto replies = RepliesTo("client");
    REQUIRE(replies.size() == 1);
    return replies[0];
  }
  wire::JobInfo Status(const std::string& id) {
    auto reply = Ask(wire::StatusRequest{++rid_, id});
    REQUIRE(reply.status == StatusCode::kOk);
    return *reply.job;
  }

  void Ready(const std::string& worker, std::vector<std::string> types, std::uint32_t capacity) {
    SendWorker(worker, wire::Ready{worker, std::move(types), capacity, {}});
  }

  // Everything in the outbox for `to`, decoded; the rest stays in the outbox.
  std::vector<wire::ClientReply> RepliesTo(const std::string& to) {
    return DecodeAll<wire::ClientReply>(to, wire::DecodeClientReply);
  }
  std::vector<wire::WorkerMessage> MessagesTo(const std::string& to) {
    return DecodeAll<wire::WorkerMessage>(to, wire::DecodeWorkerMessage);
  }
  template <typename T>
  std::vector<T> Only(const std::vector<wire::WorkerMessage>& messages) {
    std::vector<T> out;
    for (const auto& m : messages) {
      if (auto* x = std::get_if<T>(&m)) out.push_back(*x);
    }
    return out;
  }
  std::vector<wire::JobDispatch> JobsTo(const std::string& worker) {
    return Only<wire::JobDispatch>(MessagesTo(worker));
  }

 private:
  template <typename T, typename Decode>
  std::vector<T> DecodeAll(const std::string& to, Decode decode) {
    std::vector<T> out;
    for (auto& o : Drain(to)) {
      const char* command = reinterpret_cast<const char*>(&o.frames.command);
      std::vector<std::string_view> frames{o.frames.header, std::string_view(command, 1),
                                           o.frames.body};
      auto decoded = decode(frames, wire::DecodeLimits{});
      REQUIRE(decoded.has_value());
      out.push_back(std::move(*decoded));
    }
    return out;
  }

  std::vector<Outgoing> Drain(const std::string& to) {
    std::vector<Outgoing> mine, rest;
    for (auto& o : core_->outbox()) (o.to.routing_id == to ? mine : rest).push_back(std::move(o));
    core_->outbox() = std::move(rest);
    return mine;
  }

  claw::testing::TempDir dir_;
  std::unique_ptr<SqliteJobStore> store_;
  std::unique_ptr<Core> core_;
  Now now_{1'000'000, 1'700'000'000'000};
  std::uint64_t rid_ = 0;
};

}  // namespace claw::broker::testing
