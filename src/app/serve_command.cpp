// `iraewatch serve`: the daemon. Steps: load rules, open the store, start the writer, start the
// listeners, run until SIGINT/SIGTERM, then stop accepting, drain, commit and exit.

#include <pthread.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "iraewatch/app/alert_outputs.hpp"
#include "iraewatch/app/alerting.hpp"
#include "iraewatch/app/commands.hpp"
#include "iraewatch/app/delivery.hpp"
#include "iraewatch/app/hl7_intake.hpp"
#include "iraewatch/app/ingest_pipeline.hpp"
#include "iraewatch/app/logging.hpp"
#include "iraewatch/app/rule_loading.hpp"
#include "iraewatch/net/control_server.hpp"
#include "iraewatch/net/line_client.hpp"
#include "iraewatch/net/line_server.hpp"
#include "iraewatch/net/mllp_server.hpp"
#include "iraewatch/net/subscriber_server.hpp"
#include "iraewatch/store/checkpointer.hpp"
#include "iraewatch/store/writer.hpp"

namespace iraewatch::app {
namespace {

// Written atomically (temp file + rename) so that a reader never sees half of it.
bool write_ready_file(const std::string& path, const nlohmann::ordered_json& ready) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << ready.dump() << "\n";
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

std::string endpoint_text(const std::string& address, std::uint16_t port) {
  const bool v6 = address.find(':') != std::string::npos;
  return (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

// One control request (docs/alerts.md, "Control socket") -> one reply line.
std::string handle_control(const std::string& request, store::Writer& writer, Alerting& alerting) {
  nlohmann::json req = nlohmann::json::parse(request, nullptr, false);
  auto error = [](const std::string& code, const std::string& message) {
    return nlohmann::ordered_json{{"ok", false}, {"code", code}, {"error", message}}.dump();
  };
  if (!req.is_object() || !req.contains("command") || !req["command"].is_string())
    return error("invalid_input", "a request is a JSON object with a \"command\"");
  const std::string command = req["command"];
  if (command == "ping") return nlohmann::ordered_json{{"ok", true}, {"pid", ::getpid()}}.dump();
  if (command != "ack") return error("invalid_input", "unknown command '" + command + "' (known: ping, ack)");
  if (!req.contains("alert") || !req["alert"].is_number_integer() || !req.contains("by") || !req["by"].is_string() ||
      (req.contains("note") && !req["note"].is_string()))
    return error("invalid_input", "ack needs \"alert\" (integer), \"by\" (string) and an optional \"note\" (string)");
  const std::int64_t id = req["alert"];
  const std::string by = req["by"];
  const std::string note = req.value("note", "");
  core::Result<core::AlertNotice> outcome = core::fail(core::ErrorCode::store_unavailable, "not run");
  auto committed = writer.run_task([&](store::Store& s) -> core::Result<void> {
    auto r = alerting.acknowledge(s, id, by, note);
    if (!r) return std::unexpected(r.error());
    outcome = std::move(*r);
    return {};
  });
  if (!committed) return error(std::string(core::to_string(committed.error().code)), committed.error().message);
  if (!outcome) return error(std::string(core::to_string(outcome.error().code)), outcome.error().message);
  return nlohmann::ordered_json{{"ok", true}, {"alert", id}, {"seq", outcome->seq}, {"state", "acknowledged"}}.dump();
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
  if (options.mllp) {
    auto endpoint = net::parse_endpoint(*options.mllp);
    if (!endpoint) {
      std::fprintf(stderr, "iraewatch: %s\n", endpoint.error().message.c_str());
      return 2;
    }
    config.mllp.enabled = true;
    config.mllp.address = endpoint->host;
    config.mllp.port = endpoint->port;
  }
  if (options.subscribers) {
    auto endpoint = net::parse_endpoint(*options.subscribers);
    if (!endpoint) {
      std::fprintf(stderr, "iraewatch: %s\n", endpoint.error().message.c_str());
      return 2;
    }
    config.alerts.outputs.subscribers_tcp = true;
    config.alerts.outputs.subscribers_address = endpoint->host;
    config.alerts.outputs.subscribers_port = endpoint->port;
  }
  if (auto ok = setup_logging(config, true); !ok) {
    std::fprintf(stderr, "iraewatch: %s\n", ok.error().message.c_str());
    return 2;
  }

  const std::string rules_dir = effective_rules_dir(config);
  auto rule_set = load_rules_or_report(config);
  if (!rule_set) return 2;
  // The writer's connection never checkpoints inside a commit; the checkpointer's does it aside.
  auto wal = std::make_shared<store::WalGauge>();
  auto store = store::Store::open(config.data_dir, {config.synchronous_full, 5000, true, false, wal});
  if (!store) {
    spdlog::critical("cannot open the store: {}", store.error().message);
    return 2;
  }
  auto checkpoint_store = store::Store::open(config.data_dir, {config.synchronous_full, 5000});
  if (!checkpoint_store) {
    spdlog::critical("cannot open the store: {}", checkpoint_store.error().message);
    return 2;
  }
  store::Checkpointer checkpointer(std::move(*checkpoint_store), std::chrono::milliseconds(1000), wal);
  auto alerting = Alerting::start(rule_set, **store, lifecycle_policy(config));
  if (!alerting) {
    spdlog::critical("{}", alerting.error().message);
    return 2;
  }
  auto outputs = make_outputs(config, true);
  if (!outputs) {
    spdlog::critical("{}", outputs.error().message);
    return 2;
  }
  auto delivery_reader = store::Store::open(config.data_dir, {config.synchronous_full, 5000});
  auto subscriber_reader = store::Store::open(config.data_dir, {config.synchronous_full, 5000});
  if (!delivery_reader || !subscriber_reader) {
    spdlog::critical("cannot open the store: {}",
                     (delivery_reader ? subscriber_reader.error() : delivery_reader.error()).message);
    return 2;
  }
  spdlog::info("iraewatch {}: data in {}, rules {} from {} ({} rules, {} concepts, {} ICI drugs)", IRAEWATCH_VERSION,
               config.data_dir, rule_set->version, rules_dir, rule_set->rules.size(),
               rule_set->concepts.concepts().size(), rule_set->concepts.drugs().size());

  // With synchronous FULL, a second thread makes the commits durable (store/writer.hpp): the same
  // guarantee, while the writer goes on with the next group.
  auto writer_options = (*alerting)->writer_options(config.max_batch_items);
  writer_options.sync_aside = config.synchronous_full;
  store::Writer writer(std::move(*store), std::move(writer_options));
  if (config.synchronous_full && !writer.syncs_aside())
    spdlog::warn("the WAL cannot be opened for syncing; each commit syncs itself (slower under load)");
  auto delivery = Delivery::open(std::move(*delivery_reader), std::move(*outputs), &writer);
  if (!delivery) {
    spdlog::critical("{}", delivery.error().message);
    return 2;
  }

  // Alert subscribers, the control socket and the re-notification timer share a second thread,
  // so that nothing they do (outbox reads, waiting for an acknowledgement's commit) delays ingest.
  boost::asio::io_context side_io(1);
  const auto& out_config = config.alerts.outputs;
  net::SubscriberServerOptions sub_options;
  sub_options.tcp = out_config.subscribers_tcp;
  sub_options.address = out_config.subscribers_address;
  sub_options.port = out_config.subscribers_port;
  sub_options.unix_path = data_path(config, out_config.subscribers_unix_path);
  sub_options.max_subscribers = out_config.max_subscribers;
  sub_options.max_queued_lines = out_config.subscriber_queue_lines;
  sub_options.heartbeat = out_config.heartbeat;
  store::Store& sub_store = **subscriber_reader;
  net::SubscriberServer subscribers(
      side_io, sub_options,
      [&sub_store](std::int64_t after, std::size_t limit) -> core::Result<std::vector<net::OutboxLine>> {
        auto rows = sub_store.alert_lines_after(after, static_cast<int>(limit));
        if (!rows) return std::unexpected(rows.error());
        std::vector<net::OutboxLine> lines;
        lines.reserve(rows->size());
        for (auto& [seq, line] : *rows) lines.push_back(net::OutboxLine{seq, std::move(line)});
        return lines;
      },
      (*alerting)->committed_seq());
  (*alerting)->set_on_committed([&d = **delivery, &subscribers](std::int64_t head) {
    d.notify(head);
    subscribers.publish(head);
  });
  const std::string control_path = control_socket_path(config);
  net::ControlServer control(
      side_io, net::ControlServerOptions{control_path},
      [&writer, &a = **alerting](const std::string& request) { return handle_control(request, writer, a); });
  boost::asio::steady_timer renotify_timer(side_io);
  std::function<void()> arm_renotify = [&] {
    renotify_timer.expires_after(std::chrono::milliseconds(250));
    renotify_timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      if ((*alerting)->next_renotify_ms() <= core::wall_clock_ms()) {
        writer.submit_task([&a = **alerting](store::Store& s) { return a.renotify(s); },
                           [](core::Result<void> r) {
                             if (!r) spdlog::error("re-notification not stored: {}", r.error().message);
                           });
      }
      arm_renotify();
    });
  };
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
    writer.submit(std::move(items), [prepared, reply = std::move(reply), &totals](
                                        store::WriteResult result, std::vector<store::WriteItem>) mutable {
      BatchCounts counts;
      auto replies = IngestPipeline::replies(*prepared, result, &counts);
      if (!result)
        spdlog::error("a batch of {} lines was not stored: {}", prepared->slots.size(), result.error().message);
      // Counted on the thread of the writer's completions only.
      totals.stored += counts.stored;
      totals.duplicates += counts.duplicates;
      totals.rejected += counts.rejected;
      totals.failed += counts.failed;
      reply(std::move(replies));
    });
  };

  net::LineServer ndjson(
      io,
      net::LineServerOptions{config.ndjson.address, config.ndjson.port, config.ndjson.max_line_bytes,
                             std::chrono::duration_cast<std::chrono::milliseconds>(config.ndjson.idle_timeout),
                             config.ndjson.max_connections, 64 * 1024},
      handler);
  // HL7 v2 over MLLP: each message is one writer task; its ACK goes out after the commit.
  Hl7Intake hl7(rule_set->concepts, hl7_options(config), config.hl7.facility, alerting->get());
  std::atomic<std::size_t> hl7_messages{0};
  auto mllp_handler = [&](net::MllpFrame frame, net::MllpReplyFn reply) {
    hl7_messages.fetch_add(1, std::memory_order_relaxed);
    if (frame.too_large) {
      spdlog::warn("an MLLP frame from {} is larger than {} bytes: answered AR, connection closed", frame.peer,
                   config.mllp.max_frame_bytes);
      reply(hl7.too_large_ack(frame.payload, config.mllp.max_frame_bytes, core::wall_clock_ms()));
      return;
    }
    // Parsing, mapping and the ACK text are done here, on the listener's thread; the writer's task
    // does only the store work.
    auto prepared = std::make_shared<Hl7Prepared>(
        hl7.prepare(std::move(frame.payload), std::move(frame.peer), core::wall_clock_ms()));
    auto outcome =
        std::make_shared<core::Result<Hl7Outcome>>(core::fail(core::ErrorCode::store_unavailable, "not run"));
    writer.submit_task(
        [&hl7, outcome, prepared](store::Store& s) -> core::Result<void> {
          *outcome = hl7.commit(s, *prepared);
          if (!*outcome) return std::unexpected(outcome->error());
          return {};
        },
        [&hl7, &io, outcome, prepared, reply = std::move(reply)](core::Result<void> committed) mutable {
          if (!committed) {
            spdlog::error("an HL7 message was not stored: {}", committed.error().message);
            reply(hl7.not_stored_ack(prepared->payload, committed.error().message, core::wall_clock_ms()));
          } else {
            auto& o = **outcome;
            if (o.ack_code != "AA" && o.ack_code != "CA")
              spdlog::info("HL7 message answered {}: {}", o.ack_code, o.reason.substr(0, 200));
            reply(std::move(o.ack));
          }
          // The message and its records are freed on the listener's thread, not the writer's.
          boost::asio::post(io, [prepared = std::move(prepared), outcome = std::move(outcome)] {});
        });
  };
  net::MllpServer mllp(
      io,
      net::MllpServerOptions{config.mllp.address, config.mllp.port, config.mllp.max_frame_bytes,
                             std::chrono::duration_cast<std::chrono::milliseconds>(config.mllp.idle_timeout),
                             std::chrono::seconds(30), config.mllp.max_connections, config.mllp.max_in_flight},
      mllp_handler);

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: no new connections; finishing open batches", signal);
    ndjson.stop();
    mllp.stop();
  });
  nlohmann::ordered_json ready;
  std::string endpoint;
  if (config.ndjson.enabled) {
    if (auto ok = ndjson.start(); !ok) {
      spdlog::critical("{}", ok.error().message);
      return 2;
    }
    endpoint = endpoint_text(config.ndjson.address, ndjson.port());
    spdlog::info("NDJSON listener on {} (feed '{}', max line {} bytes, idle timeout {} s, max {} connections)",
                 endpoint, config.ndjson.feed, config.ndjson.max_line_bytes, config.ndjson.idle_timeout.count(),
                 config.ndjson.max_connections);
  }
  ready["ndjson"] = endpoint;
  if (config.mllp.enabled) {
    if (auto ok = mllp.start(); !ok) {
      spdlog::critical("{}", ok.error().message);
      return 2;
    }
    ready["mllp"] = endpoint_text(config.mllp.address, mllp.port());
    spdlog::info("MLLP (HL7 v2) listener on {} (feed '{}', max message {} bytes)", ready["mllp"].get<std::string>(),
                 config.mllp.feed, config.mllp.max_frame_bytes);
  }
  if (auto ok = subscribers.start(); !ok) {
    spdlog::critical("{}", ok.error().message);
    return 2;
  }
  if (sub_options.tcp) {
    ready["subscribers"] = endpoint_text(sub_options.address, subscribers.tcp_port());
    spdlog::info("alert subscribers on {}", ready["subscribers"].get<std::string>());
  }
  if (!sub_options.unix_path.empty()) {
    ready["subscribers_unix"] = sub_options.unix_path;
    spdlog::info("alert subscribers on {}", sub_options.unix_path);
  }
  if (!control_path.empty()) {
    if (auto ok = control.start(); !ok) {
      spdlog::critical("{}", ok.error().message);
      return 2;
    }
    ready["control"] = control_path;
  }
  ready["pid"] = ::getpid();
  if (!options.ready_file.empty() && !write_ready_file(options.ready_file, ready)) {
    spdlog::critical("cannot write the ready file {}", options.ready_file);
    return 2;
  }

  (*delivery)->start();
  arm_renotify();
  std::thread side_thread([&] {
    pthread_setname_np(pthread_self(), "iw-side-io");  // as top -H and perf show it
    side_io.run();
  });
  io.run();
  // Ingest has stopped. Stop the side thread's work, commit what is queued, deliver what is committed.
  boost::asio::post(side_io, [&] {
    renotify_timer.cancel();
    control.stop();
    subscribers.stop();
  });
  side_thread.join();
  writer.stop();
  (*delivery)->stop();
  spdlog::info(
      "stopped: NDJSON {} records stored, {} duplicates, {} lines rejected, {} not stored (store errors); {} HL7 "
      "messages; {} alert events",
      totals.stored, totals.duplicates, totals.rejected, totals.failed, hl7_messages.load(),
      (*alerting)->events_written());
  spdlog::shutdown();
  return 0;
}

}  // namespace iraewatch::app
