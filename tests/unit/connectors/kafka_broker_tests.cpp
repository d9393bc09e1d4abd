// The embedded broker: start, topics, fixed bootstrap port, the kafka-broker command body.
#include "kafka_test_util.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

using namespace pel;
using namespace pel::kafka_test;

namespace {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

TEST_CASE("kafka broker starts with topics that kcat sees", "[kafka][broker]") {
  connectors::kafka_broker broker({3, 0, {"ticks:16", "quotes:4"}, ""});
  const auto boot = broker.bootstraps();
  REQUIRE(boot.rfind("127.0.0.1:", 0) == 0);
  REQUIRE(broker.broker_count() == 3);
  const auto meta = run("timeout 30 kcat -b " + boot + " -L 2>&1");
  CHECK(meta.find("3 brokers") != std::string::npos);
  CHECK(meta.find("topic \"ticks\" with 16 partitions") != std::string::npos);
  CHECK(meta.find("topic \"quotes\" with 4 partitions") != std::string::npos);
}

TEST_CASE("kafka broker rejects malformed topic specs", "[kafka][broker]") {
  REQUIRE_THROWS_WITH(connectors::kafka_broker({1, 0, {"ticks"}, ""}),
                      Catch::Contains("must be written name:partitions"));
  REQUIRE_THROWS_WITH(connectors::kafka_broker({1, 0, {"ticks:0"}, ""}),
                      Catch::Contains("must be written name:partitions"));
  REQUIRE_THROWS_WITH(connectors::kafka_broker({0, 0, {}, ""}),
                      Catch::Contains("between 1 and 16"));
}

TEST_CASE("kafka broker serves a fixed bootstrap port", "[kafka][broker]") {
  const int port = free_port();
  connectors::kafka_broker broker({2, port, {"fixed:2"}, ""});
  const std::string fixed = "127.0.0.1:" + std::to_string(port);
  REQUIRE(broker.bootstraps().rfind(fixed + ",", 0) == 0);
  // A client that knows only the fixed port produces and consumes.
  REQUIRE(kcat_produce(fixed, "fixed", json_lines(0, 20)) == 0);
  auto got = kcat_consume(fixed, "fixed");
  REQUIRE(got.size() == 20);
  // A second broker on the same port is refused with a clear message.
  REQUIRE_THROWS_WITH(connectors::kafka_broker({1, port, {}, ""}), Catch::Contains("port in use"));
}

TEST_CASE("run_kafka_broker writes the bootstrap file and stops on request", "[kafka][broker]") {
  temp_dir dir;
  const auto file = dir.file("bootstrap.txt");
  std::atomic<bool> stop{false};
  int rc = -1;
  std::thread t([&] { rc = connectors::run_kafka_broker({1, 0, {"t:3"}, file}, stop); });
  std::string boot;
  REQUIRE(poll_until([&] {
    std::ifstream f(file);
    return static_cast<bool>(std::getline(f, boot)) && !boot.empty();
  }));
  REQUIRE(boot.rfind("127.0.0.1:", 0) == 0);
  CHECK(run("timeout 30 kcat -b " + boot + " -L 2>&1").find("with 3 partitions") !=
        std::string::npos);
  stop = true;
  t.join();
  REQUIRE(rc == 0);
  // Stopped: nothing listens there any more.
  CHECK(run("timeout 10 kcat -b " + boot + " -L -m 2 2>&1").find("with 3 partitions") ==
        std::string::npos);
}

TEST_CASE("run_kafka_broker refuses bad options with exit code 2", "[kafka][broker]") {
  std::atomic<bool> stop{true};
  REQUIRE(connectors::run_kafka_broker({1, 0, {"nope"}, ""}, stop) == 2);
  REQUIRE(connectors::run_kafka_broker({0, 0, {}, ""}, stop) == 2);
}
