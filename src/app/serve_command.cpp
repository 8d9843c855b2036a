// `iraewatch serve`: the daemon. Steps: load rules, open the store, start the writer, start the
// listeners, run until SIGINT/SIGTERM, then stop accepting, drain, commit and exit.

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "iraewatch/app/commands.hpp"
#include "iraewatch/app/evaluation.hpp"
#include "iraewatch/app/ingest_pipeline.hpp"
#include "iraewatch/app/logging.hpp"
#include "iraewatch/app/rule_loading.hpp"
#include "iraewatch/net/line_client.hpp"
#include "iraewatch/net/line_server.hpp"
#include "iraewatch/store/checkpointer.hpp"
#include "iraewatch/store/writer.hpp"

namespace iraewatch::app {
namespace {

// Written atomically (temp file + rename) so that a reader never sees half of it.
bool write_ready_file(const std::string& path, const std::string& ndjson_endpoint) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "{\"ndjson\":\"" << ndjson_endpoint << "\",\"pid\":" << ::getpid() << "}\n";
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int run_serve(const Config& config_in, const ServeOptions& options) {
  Config config = config_in;
  if (options.listen) {
    auto endpoint = net::parse_endpoint(*options.listen);
    if (!endpoint) {
      std::fprintf(stderr, "iraewatch: %s\n", endpoint.error().message.c_str());
      return 2;
    }
    config.ndjson.address = endpoint->host;
    config.ndjson.port = endpoint->port;
  }
  if (auto ok = setup_logging(config, true); !ok) {
    std::fprintf(stderr, "iraewatch: %s\n", ok.error().message.c_str());
    return 2;
  }

  const std::string rules_dir = effective_rules_dir(config);
  auto rule_set = load_rules_or_report(config);
  if (!rule_set) return 2;
  // The writer's connection never checkpoints inside a commit; the checkpointer's does it aside.
  auto store = store::Store::open(config.data_dir, {config.synchronous_full, 5000, true, false});
  if (!store) {
    spdlog::critical("cannot open the store: {}", store.error().message);
    return 2;
  }
  auto checkpoint_store = store::Store::open(config.data_dir, {config.synchronous_full, 5000});
  if (!checkpoint_store) {
    spdlog::critical("cannot open the store: {}", checkpoint_store.error().message);
    return 2;
  }
  store::Checkpointer checkpointer(std::move(*checkpoint_store), std::chrono::milliseconds(1000));
  auto evaluation = Evaluation::start(rule_set, **store, alert_log_path(config));
  if (!evaluation) {
    spdlog::critical("{}", evaluation.error().message);
    return 2;
  }
  spdlog::info("iraewatch {}: data in {}, rules {} from {} ({} rules, {} concepts, {} ICI drugs)", IRAEWATCH_VERSION,
               config.data_dir, rule_set->version, rules_dir, rule_set->rules.size(),
               rule_set->concepts.concepts().size(), rule_set->concepts.drugs().size());

  store::Writer writer(std::move(*store), {config.max_batch_items});
  IngestPipeline pipeline(rule_set->concepts, config.ndjson.feed);
  boost::asio::io_context io(1);

  BatchCounts totals;
  auto handler = [&](net::LineBatch batch, net::ReplyFn reply) {
    std::vector<InputLine> lines;
    lines.reserve(batch.lines.size());
    for (auto& l : batch.lines)
      lines.push_back(InputLine{l.number, std::move(l.text), l.too_long, config.ndjson.max_line_bytes});
    auto prepared = std::make_shared<PreparedBatch>(pipeline.prepare(batch.peer, std::move(lines), true));
    if (prepared->items.empty()) {
      reply(IngestPipeline::replies(*prepared, store::WriteResult{}));
      return;
    }
    auto items = std::move(prepared->items);
    writer.submit(std::move(items), [prepared, reply = std::move(reply), &totals, &evaluation](
                                        store::WriteResult result, std::vector<store::WriteItem> committed) mutable {
      BatchCounts counts;
      auto replies = IngestPipeline::replies(*prepared, result, &counts);
      if (!result)
        spdlog::error("a batch of {} lines was not stored: {}", prepared->slots.size(), result.error().message);
      // Counted on the writer thread only.
      totals.stored += counts.stored;
      totals.duplicates += counts.duplicates;
      totals.rejected += counts.rejected;
      totals.failed += counts.failed;
      reply(std::move(replies));
      // After the acknowledgement, on the evaluation thread: it never delays a sender.
      (*evaluation)->enqueue(std::move(committed), std::move(result));
    });
  };

  net::LineServer ndjson(
      io,
      net::LineServerOptions{config.ndjson.address, config.ndjson.port, config.ndjson.max_line_bytes,
                             std::chrono::duration_cast<std::chrono::milliseconds>(config.ndjson.idle_timeout),
                             config.ndjson.max_connections, 64 * 1024},
      handler);
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: no new connections; finishing open batches", signal);
    ndjson.stop();
  });
  std::string endpoint;
  if (config.ndjson.enabled) {
    if (auto ok = ndjson.start(); !ok) {
      spdlog::critical("{}", ok.error().message);
      return 2;
    }
    const bool v6 = config.ndjson.address.find(':') != std::string::npos;
    endpoint = (v6 ? "[" + config.ndjson.address + "]" : config.ndjson.address) + ":" + std::to_string(ndjson.port());
    spdlog::info("NDJSON listener on {} (feed '{}', max line {} bytes, idle timeout {} s, max {} connections)",
                 endpoint, config.ndjson.feed, config.ndjson.max_line_bytes, config.ndjson.idle_timeout.count(),
                 config.ndjson.max_connections);
  }
  if (!options.ready_file.empty() && !write_ready_file(options.ready_file, endpoint)) {
    spdlog::critical("cannot write the ready file {}", options.ready_file);
    return 2;
  }

  (*evaluation)->start_worker();
  io.run();
  writer.stop();
  (*evaluation)->stop_worker();
  spdlog::info(
      "stopped: {} records stored, {} duplicates, {} lines rejected, {} not stored (store errors); {} alert events",
      totals.stored, totals.duplicates, totals.rejected, totals.failed, (*evaluation)->events_written());
  spdlog::shutdown();
  return 0;
}

}  // namespace iraewatch::app
