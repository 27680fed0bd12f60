// gearmand through libgearman (1.1.20 on Debian 12).
//
// Producer: background jobs (SUBMIT_JOB_BG, the only kind gearmand keeps in its persistent
// queue), each acknowledged by JOB_CREATED, which gearmand sends after the queue's store: with
// `-q libsqlite3` after SQLite's commit. libgearman's task API sends a batch of tasks and
// returns when all are created, so the window is filled in batches (at most `window` jobs
// unacknowledged, as WORKLOADS.md asks). Each job has its own unique id, so none is coalesced.
//
// Worker: gearman_worker_work takes one job, runs the no-op function and sends WORK_COMPLETE
// (gearmand then deletes the job from its queue); it holds one job at a time, so a worker that
// holds C jobs at once (W2p) runs C threads with one gearman_worker_st each.
#include <libgearman-1.0/gearman.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <thread>

#include "driver.hpp"

namespace claw::peers {
namespace {

constexpr const char* kFunction = "claw_bench";
constexpr int kTimeoutMs = 60'000;

struct ClientDeleter {
  void operator()(gearman_client_st* client) const { gearman_client_free(client); }
};
struct WorkerDeleter {
  void operator()(gearman_worker_st* worker) const { gearman_worker_free(worker); }
};
using ClientPtr = std::unique_ptr<gearman_client_st, ClientDeleter>;
using WorkerPtr = std::unique_ptr<gearman_worker_st, WorkerDeleter>;

class GearmanProducer : public Producer {
 public:
  GearmanProducer(ClientPtr client, std::size_t payload_size)
      : client_(std::move(client)),
        payload_(payload_size, std::byte{'x'}),
        prefix_(std::to_string(getpid()) + "-") {}

  Status Submit(std::uint64_t count, std::uint32_t window) override {
    std::uint64_t sent = 0;
    while (sent < count) {
      const std::uint64_t batch = std::min<std::uint64_t>(window, count - sent);
      std::vector<gearman_task_st*> tasks;
      for (std::uint64_t i = 0; i < batch; ++i) {
        StampPayload(payload_);
        const std::string unique = prefix_ + std::to_string(next_unique_++);
        gearman_return_t rc = GEARMAN_SUCCESS;
        gearman_task_st* task = gearman_client_add_task_background(
            client_.get(), nullptr, nullptr, kFunction, unique.c_str(), payload_.data(),
            payload_.size(), &rc);
        if (task == nullptr || rc != GEARMAN_SUCCESS) {
          return Fail(std::string("add task: ") + gearman_client_error(client_.get()));
        }
        tasks.push_back(task);
      }
      const gearman_return_t rc = gearman_client_run_tasks(client_.get());
      if (rc != GEARMAN_SUCCESS) {
        return Fail(std::string("run tasks: ") + gearman_client_error(client_.get()));
      }
      for (gearman_task_st* task : tasks) {
        if (gearman_task_return(task) != GEARMAN_SUCCESS) {
          return Fail(std::string("submit: ") + gearman_strerror(gearman_task_return(task)));
        }
      }
      gearman_client_task_free_all(client_.get());
      sent += batch;
    }
    return {};
  }

 private:
  ClientPtr client_;
  std::vector<std::byte> payload_;
  std::string prefix_;
  std::uint64_t next_unique_ = 0;
};

Result<ClientPtr> ConnectClient(const Options& options) {
  ClientPtr client(gearman_client_create(nullptr));
  if (!client) return Fail("gearman_client_create failed");
  gearman_client_set_timeout(client.get(), kTimeoutMs);
  if (gearman_client_add_server(client.get(), options.host.c_str(),
                                static_cast<in_port_t>(options.port)) != GEARMAN_SUCCESS) {
    return Fail(std::string("add server: ") + gearman_client_error(client.get()));
  }
  const char ping[] = "ping";
  if (gearman_client_echo(client.get(), ping, sizeof ping) != GEARMAN_SUCCESS) {
    return Fail(std::string("echo: ") + gearman_client_error(client.get()));
  }
  return client;
}

// What the no-op function saw of the job it ran last.
struct Receipt {
  std::int64_t receipt_ns = 0;
  std::int64_t stamp_ns = 0;
};

gearman_return_t NoOp(gearman_job_st* job, void* context) {
  auto* receipt = static_cast<Receipt*>(context);
  receipt->receipt_ns = NowNs();
  receipt->stamp_ns = StampOf(
      {static_cast<const std::byte*>(gearman_job_workload(job)), gearman_job_workload_size(job)});
  return GEARMAN_SUCCESS;
}

struct Slot {
  WorkerPtr worker;
  std::unique_ptr<Receipt> receipt = std::make_unique<Receipt>();
};

Result<Slot> ConnectWorker(const Options& options) {
  Slot slot{.worker = WorkerPtr(gearman_worker_create(nullptr))};
  gearman_worker_st* worker = slot.worker.get();
  if (worker == nullptr) return Fail("gearman_worker_create failed");
  if (gearman_worker_add_server(worker, options.host.c_str(),
                                static_cast<in_port_t>(options.port)) != GEARMAN_SUCCESS) {
    return Fail(std::string("add server: ") + gearman_worker_error(worker));
  }
  if (gearman_worker_define_function(worker, kFunction, std::strlen(kFunction),
                                     gearman_function_create(NoOp), 0,
                                     slot.receipt.get()) != GEARMAN_SUCCESS) {
    return Fail(std::string("define function: ") + gearman_worker_error(worker));
  }
  const char ping[] = "ping";
  if (gearman_worker_echo(worker, ping, sizeof ping) != GEARMAN_SUCCESS) {
    return Fail(std::string("echo: ") + gearman_worker_error(worker));
  }
  return slot;
}

Status Serve(Slot& slot, WorkerLink& link) {
  for (;;) {
    const gearman_return_t rc = gearman_worker_work(slot.worker.get());
    if (rc != GEARMAN_SUCCESS) {
      return Fail(std::string("work: ") + gearman_worker_error(slot.worker.get()));
    }
    link.Done(slot.receipt->receipt_ns, slot.receipt->stamp_ns);
  }
}

Status RunWorker(const Options& options, WorkerLink& link) {
  std::vector<Slot> slots;
  for (std::uint32_t i = 0; i < options.credit; ++i) {
    auto slot = ConnectWorker(options);
    if (!slot) return std::unexpected(slot.error());
    slots.push_back(std::move(*slot));
  }
  link.Ready();
  std::vector<std::jthread> threads;
  for (std::size_t i = 1; i < slots.size(); ++i) {
    threads.emplace_back([&slots, &link, i] {
      if (!Serve(slots[i], link)) link.Failed();
    });
  }
  return Serve(slots[0], link);
}

}  // namespace
}  // namespace claw::peers

int main(int argc, char** argv) {
  using namespace claw::peers;
  Peer peer{
      .name = "gearmand",
      .prepare = {},
      .connect_producer = [](const Options& options) -> Result<std::unique_ptr<Producer>> {
        auto client = ConnectClient(options);
        if (!client) return std::unexpected(client.error());
        return std::make_unique<GearmanProducer>(std::move(*client), options.payload_size);
      },
      .run_worker = RunWorker,
  };
  return Main(argc, argv, peer);
}
