// secrets encrypt | encrypt-string | decrypt | view | edit | rekey: Ansible
// Vault files and inline values, read and written in Ansible's own format
// (docs/secrets.md). Passwords come from files, scripts, the environment or
// the terminal, never from argv; values to encrypt come from stdin.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <iterator>

#include "build/credentials.h"
#include "build/wire.h"
#include "cli/command.h"
#include "config/service_config.h"
#include "core/file.h"
#include "core/subprocess.h"
#include "core/text.h"
#include "secrets/vault.h"
#include "secrets/vault_password.h"
#include "secrets/vault_ref.h"
#include "secrets/vault_yaml.h"

namespace sp::cli {

namespace {

// The password sources the options name, in order; ANSIBLE_VAULT_PASSWORD_FILE
// when none does (so an Ansible user's setup works as it is).
Result<std::vector<VaultSource>> Sources(const std::vector<std::string>& ids, const std::string& file,
                                         const std::string& env, bool ask) {
  std::vector<VaultSource> out;
  for (const auto& spec : ids) {
    SP_ASSIGN_OR_RETURN(auto s, ParseVaultId(spec));
    out.push_back(std::move(s));
  }
  if (!file.empty()) out.push_back({"", file});
  if (!env.empty()) out.push_back({"", "env:" + env});
  if (ask) out.push_back({"", "prompt"});
  if (out.empty()) {
    if (const char* f = std::getenv("ANSIBLE_VAULT_PASSWORD_FILE"); f && *f) out.push_back({"", f});
  }
  if (out.empty()) {
    return Err(ErrorCode::kInvalidArgument,
               "no vault password: give --vault-password-file, --vault-password-env, --vault-id or --ask-vault-pass");
  }
  return out;
}

Result<std::vector<VaultSecret>> Secrets(const Args& a) {
  SP_ASSIGN_OR_RETURN(auto sources, Sources(a.vault_ids, a.vault_password_file, a.vault_password_env, a.ask_vault_pass));
  return ReadVaultSecrets(sources);
}

// The one secret new envelopes are made with.
Result<VaultSecret> EncryptWith(const Args& a, const std::vector<VaultSecret>& secrets) {
  if (!a.encrypt_vault_id.empty()) {
    for (const auto& s : secrets) {
      if (s.id == a.encrypt_vault_id) return s;
    }
    return Err(ErrorCode::kInvalidArgument, "--encrypt-vault-id " + a.encrypt_vault_id + ": no password given for it");
  }
  if (secrets.size() > 1) {
    return Err(ErrorCode::kInvalidArgument, "several vault passwords given: say which encrypts with --encrypt-vault-id");
  }
  return secrets.front();
}

Status Write(const std::string& path, const std::string& to, const std::string& content) {
  if (to == "-") {
    std::fwrite(content.data(), 1, content.size(), stdout);
    return Ok();
  }
  return ReplaceFile(to.empty() ? path : to, content);
}

Status CheckOneInputFor(const Args& a) {
  if (!a.to_file.empty() && a.files.size() != 1) {
    return Err(ErrorCode::kInvalidArgument, "--to takes one input file");
  }
  return Ok();
}

int Encrypt(Context& ctx) {
  const Args& a = ctx.a;
  if (auto st = CheckOneInputFor(a); !st) return Fail(st.error());
  auto secrets = Secrets(a);
  if (!secrets) return Fail(secrets.error());
  auto with = EncryptWith(a, *secrets);
  if (!with) return Fail(with.error());
  for (const auto& path : a.files) {
    auto plain = ReadTextFile(path);
    if (!plain) return Fail(plain.error());
    if (IsVaultText(*plain)) return Fail({ErrorCode::kConflict, path + " is already vault-encrypted"});
    auto envelope = VaultEncrypt(*plain, *with);
    if (!envelope) return Fail(envelope.error().Wrap(path));
    if (auto st = Write(path, a.to_file, *envelope); !st) return Fail(st.error());
    std::fprintf(stderr, "encrypted %s\n", a.to_file.empty() || a.to_file == "-" ? path.c_str() : a.to_file.c_str());
  }
  return kExitOk;
}

int EncryptString(Context& ctx) {
  const Args& a = ctx.a;
  auto secrets = Secrets(a);
  if (!secrets) return Fail(secrets.error());
  auto with = EncryptWith(a, *secrets);
  if (!with) return Fail(with.error());
  if (::isatty(STDIN_FILENO)) std::fprintf(stderr, "value to encrypt (end with Ctrl-D):\n");
  const std::string value{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  if (value.empty()) return Fail({ErrorCode::kInvalidArgument, "no value on standard input"});
  auto envelope = VaultEncrypt(value, *with);
  if (!envelope) return Fail(envelope.error());
  const std::string entry = EncryptedStringEntry(a.name, *envelope);
  std::fwrite(entry.data(), 1, entry.size(), stdout);
  return kExitOk;
}

// The whole file's plaintext, or the file with its inline values shown.
Result<std::string> Opened(const std::string& path, const std::string& text, const std::vector<VaultSecret>& secrets,
                           bool inline_ok) {
  if (IsVaultText(text)) {
    auto plain = VaultDecrypt(text, secrets);
    if (!plain) return Err(plain.error().Wrap(path));
    return plain;
  }
  SP_ASSIGN_OR_RETURN(auto values, FindInlineVaults(text));
  if (values.empty() || !inline_ok) {
    return Err(ErrorCode::kInvalidArgument, path + " is not vault-encrypted" +
                                                (values.empty() ? std::string() : " as a whole (it holds inline values: "
                                                                                  "`secrets view` shows them)"));
  }
  return RewriteInlineVaults(text, [&](const InlineVault& v) -> Result<std::string> {
    auto plain = VaultDecrypt(v.envelope, secrets);
    if (!plain) return Err(plain.error().Wrap(path + ":" + std::to_string(v.line) + ": " + v.key));
    return QuotedScalar(*plain);
  });
}

int Decrypt(Context& ctx) {
  const Args& a = ctx.a;
  if (auto st = CheckOneInputFor(a); !st) return Fail(st.error());
  auto secrets = Secrets(a);
  if (!secrets) return Fail(secrets.error());
  for (const auto& path : a.files) {
    auto text = ReadTextFile(path);
    if (!text) return Fail(text.error());
    auto plain = Opened(path, *text, *secrets, false);
    if (!plain) return Fail(plain.error());
    if (auto st = Write(path, a.to_file, *plain); !st) return Fail(st.error());
    if (a.to_file != "-") std::fprintf(stderr, "decrypted %s\n", (a.to_file.empty() ? path : a.to_file).c_str());
  }
  return kExitOk;
}

int View(Context& ctx) {
  const Args& a = ctx.a;
  auto secrets = Secrets(a);
  if (!secrets) return Fail(secrets.error());
  for (const auto& path : a.files) {
    auto text = ReadTextFile(path);
    if (!text) return Fail(text.error());
    auto plain = Opened(path, *text, *secrets, true);
    if (!plain) return Fail(plain.error());
    std::fwrite(plain->data(), 1, plain->size(), stdout);
  }
  return kExitOk;
}

// The editor's private copy: a 0700 directory holding one 0600 file, wiped
// and removed whatever happens.
class PrivateCopy {
 public:
  static Result<std::unique_ptr<PrivateCopy>> Make(const std::string& name, const std::string& content) {
    const char* tmp = std::getenv("TMPDIR");
    std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/sallyport-edit-XXXXXX";
    if (!::mkdtemp(dir.data())) return Err(ErrorCode::kUnavailable, "cannot make a private directory to edit in");
    auto copy = std::unique_ptr<PrivateCopy>(new PrivateCopy(dir, dir + "/" + name));
    SP_TRY(WriteNewFile(copy->path_, content, 0600));
    return copy;
  }
  ~PrivateCopy() {
    // Zeros over the plaintext in place (the same blocks, not a new file),
    // then the directory goes.
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st {};
    if (fd >= 0 && ::fstat(fd, &st) == 0) {
      const std::string zeros(4096, '\0');
      for (off_t done = 0; done < st.st_size;) {
        const ssize_t n = ::write(fd, zeros.data(), static_cast<size_t>(std::min<off_t>(4096, st.st_size - done)));
        if (n <= 0) break;
        done += n;
      }
      (void)::fsync(fd);
    }
    if (fd >= 0) ::close(fd);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  PrivateCopy(std::string dir, std::string path) : dir_(std::move(dir)), path_(std::move(path)) {}
  std::string dir_, path_;
};

int Edit(Context& ctx) {
  const Args& a = ctx.a;
  auto secrets = Secrets(a);
  if (!secrets) return Fail(secrets.error());
  const std::string& path = a.files.front();
  std::string plain;
  auto with = EncryptWith(a, *secrets);
  if (std::filesystem::exists(path)) {
    auto text = ReadTextFile(path);
    if (!text) return Fail(text.error());
    if (!IsVaultText(*text)) return Fail({ErrorCode::kInvalidArgument, path + " is not vault-encrypted"});
    VaultSecret used;
    auto opened = VaultDecrypt(*text, *secrets, &used);
    if (!opened) return Fail(opened.error().Wrap(path));
    plain = std::move(*opened);
    with = used;  // Kept under the password (and id) it was under.
  }
  if (!with) return Fail(with.error());
  auto copy = PrivateCopy::Make(std::filesystem::path(path).filename().string(), plain);
  if (!copy) return Fail(copy.error());
  const char* editor = std::getenv("EDITOR");
  CommandSpec spec;
  for (const auto& w : Split(editor && *editor ? editor : "vi", ' ')) {
    if (!w.empty()) spec.argv.push_back(w);
  }
  spec.argv.push_back((*copy)->path());
  spec.interactive = true;
  auto ran = SystemProcesses().Run(spec);
  if (!ran) return Fail(ran.error());
  if (!ran->ok()) return Fail({ErrorCode::kCancelled, "the editor " + spec.argv[0] + " failed (" + ran->Describe() +
                                                          "): " + path + " is unchanged"});
  auto edited = ReadTextFile((*copy)->path());
  if (!edited) return Fail(edited.error());
  if (*edited == plain && std::filesystem::exists(path)) {
    std::fprintf(stderr, "%s: no change\n", path.c_str());
    return kExitOk;
  }
  auto envelope = VaultEncrypt(*edited, *with);
  if (!envelope) return Fail(envelope.error());
  if (auto st = ReplaceFile(path, *envelope); !st) return Fail(st.error());
  std::fprintf(stderr, "saved %s\n", path.c_str());
  return kExitOk;
}

int Rekey(Context& ctx) {
  const Args& a = ctx.a;
  auto secrets = Secrets(a);
  if (!secrets) return Fail(secrets.error());
  auto sources = Sources(a.new_vault_ids, a.new_vault_password_file, "", false);
  if (!sources) return Fail({ErrorCode::kInvalidArgument, "rekey needs --new-vault-password-file or --new-vault-id"});
  auto fresh = ReadVaultSecrets(*sources);
  if (!fresh) return Fail(fresh.error());
  const VaultSecret& to = fresh->front();
  // Every file is decrypted before any is written: a wrong password changes nothing.
  std::vector<std::string> rekeyed;
  for (const auto& path : a.files) {
    auto text = ReadTextFile(path);
    if (!text) return Fail(text.error());
    Result<std::string> out = IsVaultText(*text)
        ? VaultDecrypt(*text, *secrets).and_then([&](const std::string& p) { return VaultEncrypt(p, to); })
        : RewriteInlineVaults(*text, [&](const InlineVault& v) -> Result<std::string> {
            auto plain = VaultDecrypt(v.envelope, *secrets);
            if (!plain) return Err(plain.error().Wrap(std::to_string(v.line) + ": " + v.key));
            SP_ASSIGN_OR_RETURN(auto envelope, VaultEncrypt(*plain, to));
            return InlineBlock(v, envelope);
          });
    if (!out) return Fail(out.error().Wrap(path));
    if (*out == *text) return Fail({ErrorCode::kInvalidArgument, path + " holds no vault-encrypted data"});
    rekeyed.push_back(std::move(*out));
  }
  for (size_t i = 0; i < a.files.size(); ++i) {
    if (auto st = ReplaceFile(a.files[i], rekeyed[i]); !st) return Fail(st.error());
    std::fprintf(stderr, "rekeyed %s\n", a.files[i].c_str());
  }
  return kExitOk;
}

// The one scope --deployment / --branch name.
Result<std::string> ScopeOf(const Args& a) {
  if (a.deployments.size() + a.branches.size() != 1) {
    return Err(ErrorCode::kInvalidArgument,
               "give one of --deployment NAME (an app env) or --branch PATTERN (builds' steps): the secret's scope");
  }
  const std::string scope = a.deployments.empty() ? CredentialBinding::kBranchPrefix + a.branches.front()
                                                  : CredentialBinding::kDeploymentPrefix + a.deployments.front();
  SP_TRY(CheckSecretScope(scope));
  return scope;
}

// The value `secrets put` stores: --from FILE[#KEY] opened here with the
// vault password options, as the server opens a `vault:` reference
// (OpenVaultValue), or stdin (trailing line breaks stripped, as the server
// reads "file:" references).
Result<std::string> ValueToPut(const Args& a) {
  std::string value;
  if (!a.vault_ref.empty()) {
    const size_t hash = a.vault_ref.find('#');
    SP_ASSIGN_OR_RETURN(auto secrets, Secrets(a));
    SP_ASSIGN_OR_RETURN(value, OpenVaultValue(a.vault_ref.substr(0, hash),
                                              hash == std::string::npos ? "" : a.vault_ref.substr(hash + 1), secrets));
  } else {
    if (::isatty(STDIN_FILENO)) std::fprintf(stderr, "value to store (end with Ctrl-D):\n");
    value.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    value = StripLineBreaks(std::move(value));
  }
  if (value.empty()) return Err(ErrorCode::kInvalidArgument, "no value (stdin or --from)");
  return value;
}

// secrets put PROJECT NAME (--deployment D | --branch P) [--from FILE[#KEY]]:
// a new version of a stored secret. Through a server (TLS, or loopback) the
// value goes in the request body and the server seals it under its own vault
// password; in the local store it is sealed here with the password options.
int Put(Context& ctx) {
  const Args& a = ctx.a;
  if (!IsValidCredentialName(a.name)) {
    return Fail({ErrorCode::kInvalidArgument, "secret name '" + Printable(a.name) +
                                                  "': letters, digits, '.', '_' and '-' (1-64)"});
  }
  auto scope = ScopeOf(a);
  if (!scope) return Fail(scope.error());
  auto value = ValueToPut(a);
  if (!value) return Fail(value.error());
  int64_t version = 0;
  if (ctx.remote()) {
    auto api = ctx.Api();
    if (!api) return Fail(api.error());
    std::string body = Doc{{"scope", *scope}, {"value", *value}}.dump();
    auto d = (*api)->Call("PUT", "/v1/projects/" + UrlQuery(a.project) + "/secrets/" + UrlQuery(a.name), body);
    std::fill(body.begin(), body.end(), '\0');
    if (!d) return Fail(d.error());
    version = (*d).value("version", int64_t{0});
  } else {
    auto secrets = Secrets(a);
    if (!secrets) return Fail(secrets.error());
    auto with = EncryptWith(a, *secrets);
    if (!with) return Fail(with.error());
    auto envelope = VaultEncrypt(*value, *with);
    if (!envelope) return Fail(envelope.error());
    auto store = ctx.Store();
    if (!store) return Fail(store.error());
    if (auto p = (*store)->Project(a.project); !p || !*p) {
      return Fail(p ? Error{ErrorCode::kNotFound, "no project " + a.project} : p.error());
    }
    auto v = (*store)->PutSecret({a.project, a.name, *scope, 0, *envelope, "local", ctx.Now()});
    if (!v) return Fail(v.error());
    version = *v;
  }
  std::fill(value->begin(), value->end(), '\0');
  std::printf("secret %s of project %s for %s: version %lld\n", a.name.c_str(), a.project.c_str(), scope->c_str(),
              static_cast<long long>(version));
  return kExitOk;
}

int List(Context& ctx) {
  const std::string project = ctx.a.project;
  auto d = ReadDoc(ctx, "/v1/projects/" + UrlQuery(project) + "/secrets", [project](SqliteStore& s) -> Result<Doc> {
    SP_ASSIGN_OR_RETURN(auto list, s.Secrets(project));
    Doc out = Doc::array();
    for (const auto& x : list) out.push_back(StoredSecretToJson(x));
    return Doc{{"secrets", out}};
  });
  return PrintDoc(ctx, d, [](const Doc& doc) {
    for (const auto& x : doc["secrets"]) {
      std::printf("%-24s %-32s v%-4lld %s\n", x.value("name", "").c_str(), x.value("scope", "").c_str(),
                  static_cast<long long>(x.value("version", int64_t{0})), x.value("created_by", "").c_str());
    }
  });
}

int Delete(Context& ctx) {
  const Args& a = ctx.a;
  auto scope = ScopeOf(a);
  if (!scope) return Fail(scope.error());
  if (ctx.remote()) {
    auto api = ctx.Api();
    if (!api) return Fail(api.error());
    auto d = (*api)->Call("DELETE", "/v1/projects/" + UrlQuery(a.project) + "/secrets/" + UrlQuery(a.name) +
                                        "?scope=" + UrlQuery(*scope));
    if (!d) return Fail(d.error());
  } else {
    auto store = ctx.Store();
    if (!store) return Fail(store.error());
    if (auto st = (*store)->DeleteSecret(a.project, a.name, *scope); !st) return Fail(st.error());
  }
  std::printf("secret %s of project %s for %s deleted (every version)\n", a.name.c_str(), a.project.c_str(),
              scope->c_str());
  return kExitOk;
}

void SecretScopeOptions(CLI::App& app, Args& a) {
  app.add_option("project", a.project, "Project")->required();
  app.add_option("name", a.name, "The name commits use: {credential: NAME}, secrets: [NAME]")->required();
  app.add_option("--deployment", a.deployments, "Scope: the deployment whose app env may hold it")->expected(1);
  app.add_option("--branch", a.branches,
                 "Scope: a branch pattern (branch rules' syntax) whose builds' steps may be given it")
      ->expected(1);
}

void PasswordOptions(CLI::App& app, Args& a) {
  app.add_option("--vault-id", a.vault_ids, "[ID@]SOURCE: a password file, an executable that prints it, "
                                            "'prompt' or env:NAME; repeat for several ids");
  app.add_option("--vault-password-file", a.vault_password_file,
                 "File holding the vault password, or an executable printing it (default "
                 "$ANSIBLE_VAULT_PASSWORD_FILE)");
  app.add_option("--vault-password-env", a.vault_password_env, "Environment variable holding the vault password");
  app.add_flag("--ask-vault-pass", a.ask_vault_pass, "Ask for the vault password on the terminal");
}

void EncryptOptions(CLI::App& app, Args& a) {
  PasswordOptions(app, a);
  app.add_option("--encrypt-vault-id", a.encrypt_vault_id, "With several ids: the one new envelopes are made with");
}

}  // namespace

std::vector<Command> SecretsCommands() {
  auto files = [](const char* what) {
    return [what](CLI::App& app, Args& a) { app.add_option("files", a.files, what)->required(); };
  };
  return {
      {{"secrets", "encrypt"}, "Encrypt whole files in place (Ansible Vault 1.1, or 1.2 with a vault id)",
       Kind::kWrite, Where::kNone,
       [files](CLI::App& app, Args& a) {
         files("Files to encrypt")(app, a);
         EncryptOptions(app, a);
         app.add_option("--to", a.to_file, "Write here instead of in place ('-': stdout); one input file");
       },
       Encrypt},
      {{"secrets", "encrypt-string"}, "Encrypt one value read from stdin into a `NAME: !vault |` YAML entry",
       Kind::kWrite, Where::kNone,
       [](CLI::App& app, Args& a) {
         app.add_option("--name", a.name, "The YAML key to print the value under")->required();
         EncryptOptions(app, a);
       },
       EncryptString},
      {{"secrets", "decrypt"}, "Decrypt whole vault files in place", Kind::kWrite, Where::kNone,
       [files](CLI::App& app, Args& a) {
         files("Files to decrypt")(app, a);
         PasswordOptions(app, a);
         app.add_option("--to", a.to_file, "Write here instead of in place ('-': stdout); one input file");
       },
       Decrypt},
      {{"secrets", "view"}, "Print a vault file's plaintext, or a YAML file with its !vault values shown",
       Kind::kWrite, Where::kNone,
       [files](CLI::App& app, Args& a) {
         files("Files to show")(app, a);
         PasswordOptions(app, a);
       },
       View},
      {{"secrets", "edit"}, "Edit a vault file in $EDITOR on a private copy (a missing file is created)",
       Kind::kWrite, Where::kNone,
       [](CLI::App& app, Args& a) {
         app.add_option("file", a.files, "The file to edit")->required()->expected(1);
         EncryptOptions(app, a);
       },
       Edit},
      {{"secrets", "rekey"}, "Re-encrypt vault files and inline values under a new password", Kind::kWrite,
       Where::kNone,
       [files](CLI::App& app, Args& a) {
         files("Files to rekey")(app, a);
         PasswordOptions(app, a);
         app.add_option("--new-vault-id", a.new_vault_ids, "[ID@]SOURCE of the new password");
         app.add_option("--new-vault-password-file", a.new_vault_password_file, "File (or executable) of the new password");
       },
       Rekey},
      {{"secrets", "put"}, "Store a new version of a project's secret for one deployment or branch pattern",
       Kind::kWrite, Where::kEither,
       [](CLI::App& app, Args& a) {
         SecretScopeOptions(app, a);
         app.add_option("--from", a.vault_ref,
                        "Take the value from a vault value, opened here with the vault password options: FILE (a "
                        "whole vault file) or FILE#KEY (an inline !vault value); default: the value on stdin");
         EncryptOptions(app, a);
       },
       Put},
      {{"secrets", "list"}, "A project's stored secrets: names, scopes, versions (never values)", Kind::kRead,
       Where::kEither, [](CLI::App& app, Args& a) { app.add_option("project", a.project, "Project")->required(); },
       List},
      {{"secrets", "delete"}, "Delete every version of a stored secret's scope", Kind::kWrite, Where::kEither,
       SecretScopeOptions, Delete},
  };
}

}  // namespace sp::cli
