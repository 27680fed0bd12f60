// Text and JSON output: see the header.
#include "bench/report.hpp"

#include <fmt/format.h>

#include <cmath>

namespace claw::bench {
namespace {

// 12345.6 -> "12,346" (decimals 0) or "12,345.60" (decimals 2).
std::string Grouped(double value, int decimals) {
  std::string text = fmt::format("{:.{}f}", std::fabs(value), decimals);
  const auto dot = text.find('.');
  std::string whole = text.substr(0, dot);
  const std::string fraction = dot == std::string::npos ? "" : text.substr(dot);
  for (int i = static_cast<int>(whole.size()) - 3; i > 0; i -= 3) whole.insert(i, ",");
  return (value < 0 ? "-" : "") + whole + fraction;
}

std::string Title(const std::string& workload) {
  if (workload == "W1p") return "durable enqueue, pipelined";
  if (workload == "W1s") return "durable enqueue, one at a time";
  if (workload == "W2") return "end to end, 1 job per worker";
  if (workload == "W2p") return "end to end with prefetch";
  if (workload == "W3") return "latency, one job in the system at a time";
  if (workload == "W4") return "backlog, restart after kill -9";
  if (workload == "scaling") return "W2 by number of workers";
  return "";
}

std::string ShapeLine(const Shape& s) {
  std::string line = fmt::format("N {}", Grouped(static_cast<double>(s.n), 0));
  if (s.warmup > 0) line += fmt::format(" (+{} warm-up)", s.warmup);
  if (s.backlog > 0)
    line += fmt::format(", backlog {}", Grouped(static_cast<double>(s.backlog), 0));
  line += fmt::format(", window {}, producers {}, workers {}, credit {}, payload {} B", s.window,
                      s.producers, s.workers, s.credit, s.payload_size);
  return line;
}

std::string DurabilityText(const std::string& mode) {
  if (mode == "full") return "full (ACCEPTED after fsync'd commit)";
  if (mode == "normal") return "normal (ACCEPTED after commit, not fsync'd: not durable)";
  return mode + " (not durable)";
}

std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<int>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string JsonNumber(double value) {
  if (!std::isfinite(value)) return "null";
  if (value == std::floor(value) && std::fabs(value) < 1e15) return fmt::format("{:.0f}", value);
  return fmt::format("{:.6g}", value);
}

}  // namespace

void PrintBlock(std::ostream& out, const Figures& f) {
  out << fmt::format("== {}: {} ==\n", f.shape.workload, Title(f.shape.workload));
  out << fmt::format("  {:<40} {}\n", "shape", ShapeLine(f.shape));
  out << fmt::format("  {:<40} {}\n", "durability", DurabilityText(f.durability));
  out << fmt::format("  {:<40} {}\n", "rounds",
                     f.rounds > 1 ? fmt::format("{} (median)", f.rounds) : std::string("1"));
  for (const auto& m : f.metrics) {
    out << fmt::format("  {:<40} {}\n", m.label, Grouped(m.value, m.decimals));
  }
  for (const auto& note : f.notes) out << "  note: " << note << "\n";
  out << "\n";
}

void PrintScalingHeader(std::ostream& out, const Figures& first) {
  Shape s = first.shape;
  out << fmt::format("== scaling: {} ==\n", Title("scaling"));
  out << fmt::format("  N {}, window {}, producers {}, credit {}, payload {} B, durability {}\n",
                     Grouped(static_cast<double>(s.n), 0), s.window, s.producers, s.credit,
                     s.payload_size, DurabilityText(first.durability));
  for (const auto& note : first.notes) out << "  note: " << note << "\n";
  out << fmt::format("  {:>8} {:>16} {:>14} {:>20} {:>7}\n", "workers", "completed jobs/s",
                     "broker CPU s", "broker peak RSS MiB", "rounds");
}

void PrintScalingLine(std::ostream& out, const Figures& f) {
  auto value = [&](const std::string& key, int decimals) {
    const Metric* m = f.Find(key);
    return m == nullptr ? std::string("-") : Grouped(m->value, decimals);
  };
  out << fmt::format("  {:>8} {:>16} {:>14} {:>20} {:>7}\n", f.shape.workers,
                     value("jobs_per_s", 0), value("broker_cpu_s", 2),
                     value("broker_peak_rss_mib", 1), f.rounds);
}

std::string JsonLine(const Figures& f) {
  const Shape& s = f.shape;
  std::string line = "{";
  line += "\"workload\":" + JsonString(s.workload);
  line += fmt::format(",\"n\":{},\"window\":{},\"producers\":{},\"workers\":{},\"credit\":{}", s.n,
                      s.window, s.producers, s.workers, s.credit);
  line += fmt::format(",\"payload_size\":{},\"warmup\":{},\"backlog\":{}", s.payload_size, s.warmup,
                      s.backlog);
  line += ",\"durability\":" + JsonString(f.durability);
  if (!f.handlers.empty()) line += ",\"handlers\":" + JsonString(f.handlers);
  line += fmt::format(",\"rounds\":{}", f.rounds);
  for (const auto& m : f.metrics) line += "," + JsonString(m.key) + ":" + JsonNumber(m.value);
  return line + "}";
}

}  // namespace claw::bench
