// beanstalkd over its text protocol (doc/protocol.txt of beanstalkd 1.12), plain blocking sockets.
//
// Producer: `put 0 0 60 <bytes>` pipelined up to the window on one connection, each acknowledged
// by `INSERTED <id>` (after the binlog write; with `-f 0` after its fsync). Worker: `reserve`,
// then `delete <id>` and wait for `DELETED` before counting the job. beanstalkd handles one
// command at a time per connection and a pending `reserve` blocks the commands behind it, so a
// worker that holds C jobs at once (W2p) runs C threads with one connection each.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <thread>
#include <utility>

#include "driver.hpp"

namespace claw::peers {
namespace {

class Connection {
 public:
  static Result<Connection> Open(const Options& options) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return Fail(std::string("socket: ") + std::strerror(errno));
    Connection connection(fd);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(options.port));
    if (inet_pton(AF_INET, options.host.c_str(), &address.sin_addr) != 1) {
      return Fail("not an IPv4 address: " + options.host);
    }
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      return Fail("connect to beanstalkd: " + std::string(std::strerror(errno)));
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return connection;
  }
  Connection(Connection&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)), in_(std::move(other.in_)), start_(other.start_) {}
  Connection& operator=(Connection&&) = delete;
  ~Connection() {
    if (fd_ >= 0) close(fd_);
  }

  Status Write(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = write(fd_, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Fail("write to beanstalkd: " + std::string(std::strerror(errno)));
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
  }

  // The next reply line without its "\r\n"; valid until the next read.
  Result<std::string_view> ReadLine() {
    for (;;) {
      const std::string_view buffered(in_.data() + start_, in_.size() - start_);
      if (const auto end = buffered.find("\r\n"); end != std::string_view::npos) {
        start_ += end + 2;
        return buffered.substr(0, end);
      }
      if (auto ok = Fill(); !ok) return std::unexpected(ok.error());
    }
  }
  // True when a whole reply line is already buffered (no read needed).
  bool LineBuffered() const {
    return std::string_view(in_.data() + start_, in_.size() - start_).find("\r\n") !=
           std::string_view::npos;
  }
  // The next `size` bytes and the "\r\n" after them.
  Result<std::string_view> ReadBody(std::size_t size) {
    while (in_.size() - start_ < size + 2) {
      if (auto ok = Fill(); !ok) return std::unexpected(ok.error());
    }
    const std::string_view body(in_.data() + start_, size);
    start_ += size + 2;
    return body;
  }

 private:
  explicit Connection(int fd) : fd_(fd) {}

  Status Fill() {
    in_.erase(0, start_);
    start_ = 0;
    char chunk[65536];
    for (;;) {
      const ssize_t n = read(fd_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) return Fail("beanstalkd closed the connection");
      if (n < 0) return Fail("read from beanstalkd: " + std::string(std::strerror(errno)));
      in_.append(chunk, static_cast<std::size_t>(n));
      return {};
    }
  }

  int fd_;
  std::string in_;
  std::size_t start_ = 0;
};

class BeanstalkProducer : public Producer {
 public:
  BeanstalkProducer(Connection connection, std::size_t payload_size)
      : connection_(std::move(connection)), payload_(payload_size, std::byte{'x'}) {
    header_ = "put 0 0 60 " + std::to_string(payload_size) + "\r\n";
  }

  Status Submit(std::uint64_t count, std::uint32_t window) override {
    std::uint64_t sent = 0;
    std::uint64_t acknowledged = 0;
    std::string out;
    while (acknowledged < count) {
      out.clear();
      while (sent < count && sent - acknowledged < window) {
        StampPayload(payload_);
        out += header_;
        out.append(reinterpret_cast<const char*>(payload_.data()), payload_.size());
        out += "\r\n";
        ++sent;
      }
      if (auto ok = connection_.Write(out); !ok) return ok;
      // Block for one reply, then take every other reply already read.
      do {
        auto line = connection_.ReadLine();
        if (!line) return std::unexpected(line.error());
        if (!line->starts_with("INSERTED ")) {
          return Fail("put answered \"" + std::string(*line) + "\"");
        }
        ++acknowledged;
      } while (connection_.LineBuffered());
    }
    return {};
  }

 private:
  Connection connection_;
  std::vector<std::byte> payload_;
  std::string header_;
};

// One connection holding at most one reserved job: reserve, delete, count, again.
Status ServeOne(Connection& connection, WorkerLink& link) {
  for (;;) {
    if (auto ok = connection.Write("reserve\r\n"); !ok) return ok;
    auto line = connection.ReadLine();
    if (!line) return std::unexpected(line.error());
    const std::int64_t receipt = NowNs();
    unsigned long long id = 0;
    std::size_t size = 0;
    if (std::sscanf(std::string(*line).c_str(), "RESERVED %llu %zu", &id, &size) != 2) {
      return Fail("reserve answered \"" + std::string(*line) + "\"");
    }
    auto body = connection.ReadBody(size);
    if (!body) return std::unexpected(body.error());
    const std::int64_t stamp =
        StampOf({reinterpret_cast<const std::byte*>(body->data()), body->size()});
    if (auto ok = connection.Write("delete " + std::to_string(id) + "\r\n"); !ok) return ok;
    auto deleted = connection.ReadLine();
    if (!deleted) return std::unexpected(deleted.error());
    if (*deleted != "DELETED") return Fail("delete answered \"" + std::string(*deleted) + "\"");
    link.Done(receipt, stamp);
  }
}

Status RunWorker(const Options& options, WorkerLink& link) {
  std::vector<Connection> connections;
  for (std::uint32_t i = 0; i < options.credit; ++i) {
    auto connection = Connection::Open(options);
    if (!connection) return std::unexpected(connection.error());
    connections.push_back(std::move(*connection));
  }
  link.Ready();
  std::vector<std::jthread> threads;
  for (std::size_t i = 1; i < connections.size(); ++i) {
    threads.emplace_back([&connections, &link, i] {
      if (!ServeOne(connections[i], link)) link.Failed();
    });
  }
  return ServeOne(connections[0], link);
}

}  // namespace
}  // namespace claw::peers

int main(int argc, char** argv) {
  using namespace claw::peers;
  Peer peer{
      .name = "beanstalkd",
      .prepare = {},
      .connect_producer = [](const Options& options) -> Result<std::unique_ptr<Producer>> {
        auto connection = Connection::Open(options);
        if (!connection) return std::unexpected(connection.error());
        return std::make_unique<BeanstalkProducer>(std::move(*connection), options.payload_size);
      },
      .run_worker = RunWorker,
  };
  return Main(argc, argv, peer);
}
