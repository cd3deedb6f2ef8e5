// notify add | list | remove: the server's notification channels, written
// in its store (docs/notifications.md). A channel's URL and signing secret
// are references the server reads when it sends (never their values).
#include <cstdio>

#include "cli/command.h"
#include "core/text.h"
#include "notify/notify.h"

namespace sp::cli {

namespace {

Result<std::string> RefOf(const std::string& file, const std::string& env, const char* what) {
  if (!file.empty() && !env.empty()) {
    return Err(ErrorCode::kInvalidArgument, std::string("give one of --") + what + "-file and --" + what + "-env");
  }
  if (!file.empty()) {
    if (file[0] != '/') return Err(ErrorCode::kInvalidArgument, std::string("--") + what + "-file needs an absolute path");
    return "file:" + file;
  }
  return env.empty() ? "" : "env:" + env;
}

int Add(Context& ctx) {
  const Args& a = ctx.a;
  NotifyChannel c;
  c.name = a.name;
  c.kind = a.kind;
  auto url = RefOf(a.url_file, a.url_env, "url");
  if (!url) return Fail(url.error());
  auto secret = RefOf(a.secret_file, a.secret_env, "secret");
  if (!secret) return Fail(secret.error());
  c.url_ref = *url;
  c.secret_ref = *secret;
  c.project = a.project;
  c.deployment = a.deployment;
  for (const auto& e : a.events) {
    for (const auto& part : Split(e, ',')) {
      if (!part.empty()) c.events.push_back(part);
    }
  }
  for (const auto& t : a.templates) {
    const size_t eq = t.find('=');
    if (eq == std::string::npos) return Fail({ErrorCode::kInvalidArgument, "--template EVENT=TEXT"});
    c.templates[t.substr(0, eq)] = t.substr(eq + 1);
  }
  c.created_ms = ctx.Now();
  if (auto st = CheckChannel(c); !st) return Fail(st.error());
  auto store = ctx.Store();
  if (!store) return Fail(store.error());
  if (auto st = (*store)->PutChannel(c); !st) return Fail(st.error());
  std::string events;
  for (const auto& e : c.events) events += (events.empty() ? "" : ",") + e;
  std::printf("channel %s: %s to %s, %s\n", c.name.c_str(), c.kind.c_str(), c.url_ref.c_str(),
              events.empty() ? "every event" : events.c_str());
  return kExitOk;
}

int List(Context& ctx) {
  auto doc = ReadDoc(ctx, "/v1/notify/channels", [](SqliteStore& s) -> Result<Doc> {
    SP_ASSIGN_OR_RETURN(auto channels, s.Channels());
    return Doc(ChannelsJson(channels));
  });
  return PrintDoc(ctx, doc, [](const Doc& d) {
    if (d["channels"].empty()) std::printf("no notification channels\n");
    for (const auto& c : d["channels"]) {
      std::printf("%-16s %-8s %-32s project %s deployment %s events %s\n", c.value("name", "").c_str(),
                  c.value("kind", "").c_str(), c.value("url", "").c_str(),
                  c.value("project", "").empty() ? "*" : c.value("project", "").c_str(),
                  c.value("deployment", "").empty() ? "*" : c.value("deployment", "").c_str(),
                  c["events"].empty() ? "*" : c["events"].dump().c_str());
    }
  });
}

int Remove(Context& ctx) {
  auto store = ctx.Store();
  if (!store) return Fail(store.error());
  if (auto st = (*store)->DeleteChannel(ctx.a.name); !st) return Fail(st.error());
  std::printf("channel %s removed\n", ctx.a.name.c_str());
  return kExitOk;
}

}  // namespace

std::vector<Command> NotifyCommands() {
  return {
      {{"notify", "add"}, "Add (or replace) a notification channel: a Slack-compatible or a signed JSON webhook",
       Kind::kWrite, Where::kLocal,
       [](CLI::App& app, Args& a) {
         app.add_option("name", a.name, "Channel name ([a-z0-9-])")->required();
         app.add_option("--kind", a.kind, "slack (Slack, Mattermost, Rocket.Chat incoming webhook) or webhook (JSON, "
                                          "HMAC-SHA256 signed)")
             ->check(CLI::IsMember({"slack", "webhook"}))
             ->required();
         app.add_option("--url-file", a.url_file, "A file on the server holding the webhook URL (a credential)");
         app.add_option("--url-env", a.url_env, "An environment variable of the server holding the webhook URL");
         app.add_option("--secret-file", a.secret_file, "webhook: a file on the server holding the signing secret");
         app.add_option("--secret-env", a.secret_env, "webhook: an environment variable holding the signing secret");
         app.add_option("--project", a.project, "Only this project's builds and rollouts");
         app.add_option("--deployment", a.deployment, "Only this deployment's rollouts and builds");
         app.add_option("--events", a.events, "Events, comma-separated: rollout.failed, rollout.*, build.* ... "
                                              "(default: all)");
         app.add_option("--template", a.templates, "EVENT=TEXT: the message for an event, with {field}s; repeat");
       },
       Add},
      {{"notify", "list"}, "The notification channels (references, never URLs)", Kind::kRead, Where::kEither, nullptr,
       List},
      {{"notify", "remove"}, "Remove a notification channel", Kind::kWrite, Where::kLocal,
       [](CLI::App& app, Args& a) { app.add_option("name", a.name, "Channel name")->required(); }, Remove},
  };
}

}  // namespace sp::cli
