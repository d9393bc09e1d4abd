#pragma once
/// \file
/// PEL's own MQTT 3.1.1 subscribing client, for the source. libmosquitto acknowledges a QoS 1
/// message (PUBACK) and a QoS 2 message (PUBREC) before its callback runs, so a process that
/// dies with messages in its queue loses them. This client hands a message over unacknowledged
/// and acknowledges it only when told (`acknowledge`, from a completed checkpoint), in order of
/// arrival as MQTT requires. Internal to connectors/mqtt; tests include it.

#include "mqtt_common.hpp"

#include <atomic>
#include <bitset>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pel::connectors::mqtt_detail {

class subscriber {
public:
  struct message {
    std::string topic;
    std::string payload;    ///< the first `keep_bytes` when `size` > `max_payload`
    std::size_t size = 0;   ///< the whole payload's size
    std::uint16_t id = 0;   ///< packet identifier; 0 for QoS 0
    std::uint8_t qos = 0;
    bool dup = false;       ///< the broker sent it again after a reconnect
    std::uint64_t seq = 0;  ///< 1, 2, ... in order of arrival, across reconnects
    std::int64_t time = 0;  ///< processing time at receipt, ns
  };
  enum class level { info, warning, error };
  using notice_fn = std::function<void(level, std::string)>;

  struct settings {
    connection conn;
    bool clean_session = true;
    std::vector<std::string> topics;
    int qos = 1;
    /// Messages held for `take`; when this many wait, the socket is not read (the broker
    /// holds the rest) until `take` makes room.
    std::size_t queue_size = 10000;
    std::size_t max_payload = 1 << 20;  ///< longer payloads keep only `keep_bytes`
    std::size_t keep_bytes = 4096;
    /// false: acknowledge on receipt, like libmosquitto (`acknowledge` is then not needed).
    bool deferred_ack = true;
    /// With `deferred_ack`: when this many QoS 1/2 messages wait for their acknowledgement,
    /// the socket is not read until some are acknowledged. MQTT's packet ids are 16 bits: a
    /// broker numbers what it sends in turn, so beyond 65,535 unacknowledged messages it
    /// would reuse the id of one still waiting.
    std::size_t max_unacknowledged = 60000;
    std::string component;  ///< for messages
  };

  /// `notice` is called from the network thread.
  subscriber(settings s, notice_fn notice);
  ~subscriber();
  subscriber(const subscriber&) = delete;
  subscriber& operator=(const subscriber&) = delete;

  /// Checks the TLS files and starts the network thread, which connects in the background
  /// and reconnects with back-off. Throws `std::runtime_error` when TLS cannot be set up.
  void start();
  /// Sends the acknowledgements asked for so far and DISCONNECT (within 2 s), then joins.
  void stop();

  /// Appends up to `max` received messages to `out`. Never blocks.
  std::size_t take(std::vector<message>& out, std::size_t max);
  /// Acknowledges every QoS 1/2 message with `seq` <= `seq` that is still unacknowledged
  /// (PUBACK, PUBREC for QoS 2), in order of arrival. From any thread.
  void acknowledge(std::uint64_t seq);

  /// The caller resumes from a checkpoint and counts on the broker's session (clean_session
  /// false) to send again what it took after that checkpoint: if the first connection finds
  /// no session there (before or after this call), that is said once, as a loss. From any
  /// thread.
  void expect_session();

  /// Connections made and subscribed so far (the first and every reconnect).
  std::uint64_t connects() const { return connects_.load(); }
  /// Messages handed over (a redelivery of one not yet acknowledged is not counted again).
  std::uint64_t received() const { return received_.load(); }
  /// Redeliveries of messages held unacknowledged, dropped as duplicates.
  std::uint64_t redelivered() const { return redelivered_.load(); }
  /// QoS 1/2 messages received and not yet acknowledged.
  std::size_t unacknowledged() const { return unacked_.load(); }
  /// Acknowledgements written to the socket so far.
  std::uint64_t acknowledged() const { return acked_.load(); }

private:
  struct pending {
    std::uint64_t seq;
    std::uint16_t id;
    std::uint8_t qos;
    bool forgotten;  ///< the broker reused the id for a newer message: not acknowledged
  };
  class transport;  // a TCP socket, optionally TLS

  void run();
  /// One connection from connect to loss; false when it never got to CONNACK.
  bool session(std::string& error);
  bool handle(std::uint8_t type, std::uint8_t flags, const char* body, std::size_t n,
              std::string& error);
  void publish(std::uint8_t flags, const char* body, std::size_t n, std::string& error);
  void queue_acks();
  void window_check();
  void window_released(std::int64_t now);
  void put_ack(std::uint8_t type, std::uint16_t id);
  void wait_backoff(unsigned seconds);
  void wake();
  bool room();  ///< the queue has space and the unacknowledged are under the cap (network thread)
  void say(level l, const std::string& text);
  void first_session(bool present);
  void check_lost_session();  ///< the `expect_session` warning, when it is due

  settings s_;
  notice_fn notice_;
  std::string client_id_;
  void* ssl_ctx_ = nullptr;  ///< SSL_CTX*, when TLS is on
  int wake_fd_ = -1;
  std::thread thread_;

  // Network thread only.
  std::unique_ptr<transport> t_;
  std::string in_;
  std::string out_;
  std::deque<pending> pending_;
  std::bitset<65536> pending_ids_;
  std::uint16_t next_id_ = 1;
  bool subscribed_ = false;
  bool session_present_ = false;
  bool ping_out_ = false;
  // The in-flight window check (see `queue_acks`).
  std::size_t window_seen_ = 0;
  std::size_t window_candidate_ = 0;
  std::int64_t window_ack_ns_ = 0;
  bool window_watch_ = false;
  int window_repeats_ = 0;
  bool window_said_ = false;
  bool paused_seen_ = false;  ///< reading paused since the last `window_check`
  bool cap_said_ = false;  ///< the `max_unacknowledged` warning went out
  std::int64_t last_publish_ns_ = 0;

  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  std::deque<message> queue_;
  std::uint64_t seq_ = 0;
  std::uint64_t ack_upto_ = 0;
  bool stopping_ = false;
  bool expect_session_ = false;
  int first_session_ = -1;  ///< the first CONNACK's session-present flag; -1 before it
  bool lost_session_said_ = false;

  std::atomic<std::uint64_t> connects_{0};
  std::atomic<std::uint64_t> received_{0};
  std::atomic<std::uint64_t> redelivered_{0};
  std::atomic<std::size_t> unacked_{0};
  std::atomic<std::uint64_t> acked_{0};
};

}  // namespace pel::connectors::mqtt_detail
