// The etcd face goes through the server's one admission pipeline (SPEC §7,
// STYLE "One admission pipeline"): kvctl's tokens and grants, the rate
// limit and /metrics apply to it, with refusals in etcd's error shape.
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/harness.h"
#include "tests/e2e/pki.h"

#include <httplib.h>

namespace kvctl::e2e {
namespace {

using nlohmann::json;

const std::string kReader = "etcd-reader-token-0123456789";
const std::string kWriter = "etcd-writer-token-0123456789";
const std::string kAdmin = "etcd-admin-token-01234567890";

// "app/x" and friends, base64.
const std::string kAppX = "YXBwL3g=";    // app/x
const std::string kApp = "YXBwLw==";     // app/
const std::string kAppEnd = "YXBwMA==";  // app0: the end of prefix app/
const std::string kOther = "b3RoZXI=";   // other
const std::string kZero = "AA==";        // "\0"

struct Answer {
  int status = 0;
  json body;
};

Answer Post(int port, const std::string& path, const std::string& body, const std::string& token) {
  HttpClient http(port);
  httplib::Headers headers = {{"Content-Type", "application/json"}};
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  HttpResponse r = http.Request("POST", path, body, headers);
  return {r.status, json::parse(r.body, nullptr, false)};
}

TEST_CASE("etcd face: kvctl's bearer tokens and grants apply, compaction only with admin, refusals in etcd's shape (401 code 16, 403 code 7)") {
  TempDir dir;
  const std::filesystem::path file = dir / "tokens.toml";
  WriteFile(file, "[[tokens]]\nname = \"reader\"\nsha256 = \"" + HashToken(kReader) +
                      "\"\ngrants = [{ prefix = \"app/\", ops = [\"read\"] }]\n"
                      "[[tokens]]\nname = \"writer\"\nsha256 = \"" + HashToken(kWriter) +
                      "\"\ngrants = [{ prefix = \"app/\", ops = [\"read\", \"write\"] }]\n"
                      "[[tokens]]\nname = \"admin\"\nsha256 = \"" + HashToken(kAdmin) +
                      "\"\ngrants = [{ prefix = \"\", ops = [\"admin\"] }]\n");
  const int etcd_port = FreePort();
  KvServer server({"--auth-file", file.string(), "--etcd-listen", Addr(etcd_port)});

  const Answer anonymous = Post(etcd_port, "/v3/kv/range", R"({"key":")" + kAppX + R"("})", "");
  CHECK(anonymous.status == 401);
  CHECK(anonymous.body["code"] == 16);
  CHECK(anonymous.body["error"] == anonymous.body["message"]);
  CHECK(Post(etcd_port, "/v3/kv/range", R"({"key":")" + kAppX + R"("})", "wrong-token").status == 401);

  const std::string put_app_x = R"({"key":")" + kAppX + R"(","value":"MQ=="})";
  CHECK(Post(etcd_port, "/v3/kv/put", put_app_x, kWriter).status == 200);
  const Answer read = Post(etcd_port, "/v3/kv/range", R"({"key":")" + kAppX + R"("})", kReader);
  CHECK(read.status == 200);
  CHECK(read.body["count"] == "1");
  const Answer prefix =
      Post(etcd_port, "/v3/kv/range", R"({"key":")" + kApp + R"(","range_end":")" + kAppEnd + R"("})", kReader);
  CHECK(prefix.status == 200);
  CHECK(prefix.body["kvs"].size() == 1);

  struct Forbidden {
    std::string path, body, token;
  };
  for (const Forbidden& f : std::vector<Forbidden>{
           {"/v3/kv/put", put_app_x, kReader},
           {"/v3/kv/range", R"({"key":")" + kOther + R"("})", kReader},
           {"/v3/kv/range", R"({"key":")" + kZero + R"(","range_end":")" + kZero + R"("})", kWriter},
           {"/v3/kv/deleterange", R"({"key":")" + kAppX + R"("})", kReader},
           {"/v3/kv/txn", R"({"compare":[{"key":")" + kOther + R"(","target":"VERSION","version":0}]})", kWriter},
           {"/v3/kv/txn", R"({"success":[{"request_put":{"key":")" + kAppX + R"(","value":"Mg=="}}]})", kReader},
           {"/v3/lease/grant", R"({"TTL":10})", kReader},
           {"/v3/watch", R"({"create_request":{"key":")" + kOther + R"("}})", kReader},
           // Compaction is store-wide: the admin grant, as POST /v1/admin/compact.
           {"/v3/kv/compaction", R"({"revision":1})", kWriter},
       }) {
    CAPTURE(f.path);
    CAPTURE(f.body);
    const Answer a = Post(etcd_port, f.path, f.body, f.token);
    CHECK(a.status == 403);
    CHECK(a.body["code"] == 7);
  }
  CHECK(Post(etcd_port, "/v3/lease/grant", R"({"TTL":10})", kWriter).status == 200);
  CHECK(Post(etcd_port, "/v3/kv/compaction", R"({"revision":1})", kAdmin).status == 200);
}

TEST_CASE("etcd face: the rate limit applies (429, code 8) and /metrics counts its routes") {
  const int etcd_port = FreePort();
  KvServer server({"--ratelimit-rate", "1", "--ratelimit-burst", "3", "--etcd-listen", Addr(etcd_port)});
  int limited = 0;
  for (int i = 0; i < 6; ++i) {
    const Answer a = Post(etcd_port, "/v3/kv/range", R"({"key":")" + kAppX + R"("})", "");
    if (a.status == 429) {
      CHECK(a.body["code"] == 8);
      ++limited;
    }
  }
  CHECK(limited >= 2);
  HttpClient http(server.port());
  HttpResponse metrics = http.Request("GET", "/metrics");
  if (metrics.status == 429) {  // the main face shares the limit: wait for a token
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    metrics = http.Request("GET", "/metrics");
  }
  REQUIRE(metrics.status == 200);
  CHECK(metrics.body.find(R"(kvctl_http_requests_total{route="etcd:/v3/kv",method="POST",code="200"})") !=
        std::string::npos);
  CHECK(metrics.body.find(R"(kvctl_http_requests_total{route="etcd:/v3/kv",method="POST",code="429"})") !=
        std::string::npos);
}

TEST_CASE("etcd face: a value of limits.max_value_bytes fits in a put though its body is base64, one byte more does not") {
  const int etcd_port = FreePort();
  KvServer server({"--etcd-listen", Addr(etcd_port)});
  // 1 MiB (the default limit) of 'v': base64 of "vvv" is "dnZ2".
  const size_t limit = 1 << 20;
  std::string value;
  for (size_t i = 0; i + 3 <= limit; i += 3) value += "dnZ2";
  value += "dg==";  // the 1 MiB's last byte (2^20 = 3 * 349525 + 1)
  const Answer fits = Post(etcd_port, "/v3/kv/put", R"({"key":")" + kAppX + R"(","value":")" + value + R"("})", "");
  CHECK(fits.status == 200);
  const Answer range = Post(etcd_port, "/v3/kv/range", R"({"key":")" + kAppX + R"(","count_only":true})", "");
  CHECK(range.body["count"] == "1");
  value.resize(value.size() - 4);
  value += "dnY=";  // two bytes: one over the limit
  const Answer over = Post(etcd_port, "/v3/kv/put", R"({"key":")" + kAppX + R"(","value":")" + value + R"("})", "");
  CHECK(over.status == 400);
  CHECK(over.body["code"] == 3);
}

TEST_CASE("etcd face: served over mutual TLS as server.listen is: etcd3gw's client with a certificate is answered, without none") {
  Pki pki;
  TempDir tmp;
  const int etcd_port = FreePort();
  ServerOptions o{(tmp / "data").string(), FreePort(),
                  {"--tls-cert", pki("server.pem"), "--tls-key", pki("server.key"), "--tls-client-ca", pki("ca.pem"),
                   "--etcd-listen", Addr(etcd_port)},
                  {}};
  o.ready_probe = TlsReady(pki, true);
  ServerProcess server(tmp.path(), std::move(o));
  server.WaitReady();
  // Debian's etcd3gw client over https, as an operator would use it.
  const std::string script =
      "import sys\n"
      "from etcd3gw.client import Etcd3Client\n"
      "port, ca = int(sys.argv[1]), sys.argv[2]\n"
      "cert = sys.argv[3:5] if len(sys.argv) > 3 else (None, None)\n"
      "c = Etcd3Client(host='127.0.0.1', port=port, protocol='https', ca_cert=ca, cert_cert=cert[0], "
      "cert_key=cert[1], api_path='/v3/')\n"
      "assert c.put('tls-key', 'over tls')\n"
      "print(c.get('tls-key')[0].decode(), end='')\n";
  CliResult with_cert = RunProgram({"/usr/bin/python3", "-c", script, std::to_string(etcd_port), pki("ca.pem"),
                                    pki("client.pem"), pki("client.key")});
  CHECK_MESSAGE(with_cert.exit_code == 0, with_cert.err);
  CHECK(with_cert.out == "over tls");
  CliResult without_cert =
      RunProgram({"/usr/bin/python3", "-c", script, std::to_string(etcd_port), pki("ca.pem")});
  CHECK(without_cert.exit_code != 0);
  CHECK(without_cert.out.empty());
}

}  // namespace
}  // namespace kvctl::e2e
