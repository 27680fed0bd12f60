// The real claw-broker and its config files: a bad file stops it with a message naming the file,
// line and key; several files apply in order.
#include <doctest/doctest.h>

#include <fstream>

#include "tests/integration/cluster.hpp"

namespace claw::testing {
namespace {

class ConfigDir {
 public:
  std::string Write(const std::string& name, const std::string& text) {
    const auto path = dir_.File(name);
    std::ofstream(path) << text;
    return path;
  }
  std::string data() const { return dir_.File("data"); }

 private:
  TempDir dir_;
};

// Runs claw-broker with `args`; it must refuse to start.
RunResult Refused(const ConfigDir& dir, std::vector<std::string> args) {
  std::vector<std::string> argv = {BinPath("claw-broker"), "--bind", "tcp://127.0.0.1:0", "--data",
                                   dir.data()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto result = Run(argv, "", std::chrono::seconds(30));
  CHECK(result.code == 2);
  return result;
}

TEST_CASE("an invalid config stops the broker with the file, line and key") {
  ConfigDir dir;
  const auto unknown =
      dir.Write("unknown.yaml", "distribution:\n  strategy: hash\n  stratgy: adaptive\n");
  CHECK(Refused(dir, {"--config", unknown})
            .err.find(unknown + ":3: distribution.stratgy: unknown key") != std::string::npos);

  const auto bad_value =
      dir.Write("value.yaml", "distribution:\n  routing:\n    locality: nearby\n");
  CHECK(Refused(dir, {"--config", bad_value})
            .err.find(bad_value + ":3: distribution.routing.locality: expected same-zone, "
                                  "cross-zone or any, got 'nearby'") != std::string::npos);

  const auto out_of_range = dir.Write("range.yaml",
                                      "faultTolerance:\n  circuitBreaker:\n    enabled: true\n"
                                      "    failureThreshold: 0\n");
  CHECK(Refused(dir, {"--config", out_of_range})
            .err.find(out_of_range +
                      ":4: faultTolerance.circuitBreaker.failureThreshold: must be >= 1") !=
        std::string::npos);
}

TEST_CASE("several config files: the error names the file that set the bad key") {
  ConfigDir dir;
  const auto good = dir.Write("good.yaml", "distribution:\n  strategy: round-robin\n");
  const auto bad = dir.Write("bad.yaml", "distribution:\n  adaptive:\n    threshold: 2\n");
  const auto result = Refused(dir, {"--config", good, "--config", bad});
  CHECK(result.err.find(bad + ":3: distribution.adaptive.threshold: a load ratio must be 0-1, "
                              "got 2") != std::string::npos);
  CHECK(result.err.find(good) == std::string::npos);
}

TEST_CASE("several config files apply in order, a later key winning") {
  ConfigDir dir;
  const auto base = dir.Write("base.yaml",
                              "distribution:\n  strategy: hash\n"
                              "faultTolerance:\n  healthCheck:\n    interval: 1s\n");
  const auto site = dir.Write("site.yaml",
                              "distribution:\n  strategy: least-loaded\n"
                              "faultTolerance:\n  healthCheck:\n    interval: 3s\n"
                              "    timeout: 2s\n");
  // site after base: interval 3s, timeout 2s.
  Cluster c({"--config", base, "--config", site});
  c.StartBroker();
  CHECK(c.broker().Running());
  // base after site: interval 1s is shorter than site's timeout.
  CHECK(Refused(dir, {"--config", site, "--config", base})
            .err.find(site + ":6: faultTolerance.healthCheck.timeout: 2s must not exceed the "
                             "interval, 1s") != std::string::npos);
  Refused(dir, {"--config", base, "--config", dir.data() + "/absent.yaml"});
}

TEST_CASE("cluster.nodes: the cluster view shows which declared worker nodes are up") {
  ConfigDir dir;
  const auto file = dir.Write("nodes.yaml",
                              "cluster:\n"
                              "  name: crawl\n"
                              "  nodes:\n"
                              "    - {id: broker-1, host: 127.0.0.1, role: coordinator}\n"
                              "    - {id: w1, host: 127.0.0.1, capacity: 2, zone: eu-1}\n"
                              "    - {id: w2, host: 10.0.1.12}\n");
  Cluster c({"--config", file});
  c.StartBroker();
  c.StartWorker("w1", "t", "true", {"--capacity", "6"});
  REQUIRE(WaitFor([&] { return c.Json({"cluster"})["workers"].size() == 1; },
                  std::chrono::seconds(60)));
  const auto cluster = c.Json({"cluster"});
  CHECK(cluster["name"] == "crawl");
  CHECK(cluster["workers"][0]["capacity"] == 2);
  CHECK(cluster["workers"][0]["labels"]["zone"] == "eu-1");
  REQUIRE(cluster["nodes"].size() == 3);
  CHECK(cluster["nodes"][0]["up"].is_null());
  CHECK(cluster["nodes"][1]["up"] == true);
  CHECK(cluster["nodes"][2]["up"] == false);
  const auto text = c.Client({"cluster"});
  CHECK(text.code == 0);
  CHECK(text.out.find("1 of 2 worker nodes up (down: w2)") != std::string::npos);
}

}  // namespace
}  // namespace claw::testing
