// Siege: hostile load on a TLS server from loopback addresses 127.0.0.x, in
// this process (raw sockets and OpenSSL): log followers that stay attached,
// slow-loris clients that send one byte of a never-ending head every 500 ms
// (reconnecting when the server closes them), connections stalled in the
// middle of a TLS ClientHello, and a hold of N bare connections (re-opened
// as the server closes them). Bounded: everything ends at Stop() or at
// max_duration, whichever comes first.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace sp::test {

struct SiegeOptions {
  int port = 0;                // The server's TLS port on 127.0.0.1.
  std::string follow_path;     // GET this (e.g. /v1/jobs/7/log?follow=1) with `bearer`.
  std::string bearer;          // "Bearer <token>".
  int followers = 64;
  int slowloris = 200;
  int stalled_handshakes = 100;
  int hold = 5000;
  int first_address = 10;      // 127.0.0.<first_address>...: each kind from its own addresses.
  int addresses = 20;          // Over how many addresses followers, slow-loris and handshakes spread.
  std::chrono::seconds max_duration{120};
};

struct SiegeCounts {
  std::atomic<long> followers_attached{0};  // Answered 200 and streaming.
  std::atomic<long> followers_refused{0};   // Not 200, or closed before the answer's head.
  std::atomic<long> slowloris_open{0};
  std::atomic<long> slowloris_closed{0};    // By the server (header timeout).
  std::atomic<long> handshakes_open{0};
  std::atomic<long> handshakes_closed{0};   // By the server (handshake timeout).
  std::atomic<long> hold_open{0};
  std::atomic<long> hold_opened{0};         // Connections the hold made in all.
  std::atomic<long> hold_failed{0};         // Refused or not accepted within 2 s.
  std::atomic<long> hold_closed{0};         // Closed by the server (evicted, timed out, refused).
  std::string Summary() const;
};

class Siege {
 public:
  explicit Siege(SiegeOptions options);
  ~Siege() { Stop(); }
  Siege(const Siege&) = delete;
  Siege& operator=(const Siege&) = delete;
  // Starts every kind; returns at once (connections open in the background).
  void Start();
  void Stop();
  const SiegeCounts& counts() const { return counts_; }
  // Waits (up to `timeout`) until every follower is attached and the hold
  // has tried all its connections once.
  bool WaitEstablished(std::chrono::seconds timeout) const;

 private:
  void Follower(int i);
  void SlowLoris();
  void Handshakes();
  void Hold();
  bool Running() const;

  SiegeOptions o_;
  SiegeCounts counts_;
  std::atomic<bool> stop_{false};
  std::chrono::steady_clock::time_point deadline_;
  std::vector<std::thread> threads_;
};

}  // namespace sp::test
