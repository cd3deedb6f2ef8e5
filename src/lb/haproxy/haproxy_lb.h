// HaproxyLoadBalancer: the LoadBalancer port spoken over HAProxy's runtime
// API (2.6), reached through a unix socket or a TCP "host:port" address.
//
// Each command opens one connection in non-interactive mode: it sends
// "cmd\n" and reads until HAProxy closes the connection. The whole exchange
// (connect, write, read) is bounded by the I/O timeout given at creation.
// Objects hold no connection and no mutable state, so one instance may be
// used from several threads at once.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "inventory/inventory.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/fd.h"
#include "lb/load_balancer.h"

namespace sp {

// True for names HAProxy accepts for proxies and servers: 1..100 characters
// of [A-Za-z0-9._:-]. Anything else (spaces, newlines, '/', ';', which the
// CLI treats as a command separator) is refused before it reaches a command.
bool IsValidHaproxyName(std::string_view name);

// Maps the `status` column of `show stat` to the administrative state:
// "MAINT", "MAINT (via x/y)", "MAINT (resolution)" -> kMaint; "DRAIN",
// "DRAIN (agent)" -> kDrain; anything else -> kReady. HAProxy reports a
// drained server that fails its checks as "DOWN", so such a server reads as
// kReady here; it is not InRotation() either way.
AdminState AdminStateFromStatus(std::string_view status);

// What `show stat` says about one backend.
struct BackendStat {
  bool backend_seen = false;         // A row (BACKEND or server) named the backend.
  std::vector<ServerState> servers;  // Server rows in HAProxy's order.
};

// Parses the CSV of `show stat` and keeps the rows of `backend`, skipping
// FRONTEND and BACKEND rows. Columns are found by name in the "# " header
// line (pxname, svname, scur, status); quoted fields are understood. Errors:
// kNotFound when the text is "No such proxy."; kInternal, quoting the start
// of the text, when there is no header, a needed column is missing or a row
// is malformed.
Result<BackendStat> ParseShowStat(std::string_view csv, std::string_view backend);

class HaproxyLoadBalancer final : public LoadBalancer {
 public:
  // Exactly one of spec.socket / spec.address must be set (kInvalidArgument
  // otherwise, also for an address that is not "host:port"). Nothing is
  // contacted here.
  static Result<std::unique_ptr<HaproxyLoadBalancer>> Create(const LoadBalancerSpec& spec,
                                                             Millis io_timeout = Millis(2000));

  // "haproxy unix:/run/haproxy.sock" or "haproxy tcp:127.0.0.1:9999".
  std::string Describe() const override;

  // `set server <backend>/<server> state drain|maint|ready`. kNotFound names
  // the missing backend or server; kUnavailable when HAProxy cannot be
  // reached or refuses (e.g. a socket without "level admin").
  Status SetState(const std::string& backend, const std::string& server, AdminState state) override;
  // One `show stat` of this backend only. kNotFound for an unknown backend or server.
  Result<ServerState> GetServer(const std::string& backend, const std::string& server) override;
  Result<std::vector<ServerState>> ListBackend(const std::string& backend) override;
  // `add server <backend>/<server> <address>:<port>` (a dynamic server,
  // HAProxy >= 2.4: created in maintenance; the backend needs a dynamic
  // balance algorithm such as roundrobin).
  Status AddServer(const std::string& backend, const std::string& server, const std::string& address,
                   int port) override;
  // `set server ... state maint`, `shutdown sessions server ...`, `del server ...`
  // (HAProxy 2.6 deletes configured servers too, until its next reload).
  Status RemoveServer(const std::string& backend, const std::string& server) override;

  // Sends one raw command (no newline in it) and returns HAProxy's whole
  // answer. kUnavailable: cannot connect (the message names the socket or
  // address); kTimeout: no complete answer within the I/O timeout.
  // Note that ';' separates several commands on HAProxy's CLI.
  Result<std::string> Command(const std::string& cmd);

 private:
  HaproxyLoadBalancer(std::string socket_path, std::string host, int port, Millis io_timeout);
  Result<BackendStat> ShowBackend(const std::string& backend);
  // A connected, non-blocking socket to the runtime API (by `deadline_ms`).
  Result<UniqueFd> Connect(int64_t deadline_ms);

  std::string socket_path_;  // Unix socket, or empty for TCP.
  std::string host_;         // TCP host (IP literal or name).
  int port_ = 0;
  Millis io_timeout_;
  Clock& clock_ = RealClock::Instance();  // Deadlines of one command.
};

// The LoadBalancer port for an inventory spec; see HaproxyLoadBalancer::Create.
Result<std::unique_ptr<LoadBalancer>> MakeHaproxyLoadBalancer(const LoadBalancerSpec& spec,
                                                              Millis io_timeout = Millis(2000));

}  // namespace sp
