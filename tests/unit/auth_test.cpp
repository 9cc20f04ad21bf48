// Tests for lib/server/auth.h: token hashes, grants by prefix and
// operation, and who a request is.
#include "lib/server/auth.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace kvctl::server {
namespace {

TEST_SUITE_BEGIN("auth");

HttpRequest WithHeader(std::string name, std::string value) {
  HttpRequest r;
  r.method = "GET";
  r.path = "/v1/kv/app/x";
  r.headers.emplace_back(std::move(name), std::move(value));
  return r;
}

Authenticator TwoTokensAndACert() {
  AuthOptions o;
  o.tokens.push_back({"deploy", *ParseSha256Hex(Sha256Hex("s3cret-deploy")),
                      {Grant{"app/", true, true, false}}});
  o.tokens.push_back({"ops", *ParseSha256Hex(Sha256Hex("s3cret-ops")), {Grant{"", true, false, true}}});
  o.certs.push_back({"backup.example", {Grant{"", true, false, false}}});
  return Authenticator(std::move(o));
}

TEST_CASE("Sha256Hex matches the FIPS 180-2 test vector and sha256sum's output form") {
  CHECK(Sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(Sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("ParseSha256Hex takes exactly 64 hex digits in either case") {
  const std::string hex = Sha256Hex("abc");
  REQUIRE(ParseSha256Hex(hex).has_value());
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(ParseSha256Hex(upper) == ParseSha256Hex(hex));
  CHECK_FALSE(ParseSha256Hex(hex.substr(1)).has_value());
  CHECK_FALSE(ParseSha256Hex(hex + "0").has_value());
  CHECK_FALSE(ParseSha256Hex(std::string(64, 'g')).has_value());
  CHECK_FALSE(ParseSha256Hex("abc").has_value());
}

TEST_CASE("a request is authenticated by its bearer token, compared by hash") {
  const Authenticator auth = TwoTokensAndACert();
  REQUIRE(auth.enabled());

  auto deploy = auth.Authenticate(WithHeader("Authorization", "Bearer s3cret-deploy"));
  REQUIRE(deploy.principal != nullptr);
  CHECK(deploy.principal->name == "deploy");
  auto ops = auth.Authenticate(WithHeader("authorization", "bearer   s3cret-ops"));
  REQUIRE(ops.principal != nullptr);
  CHECK(ops.principal->name == "ops");

  for (const char* bad : {"Bearer s3cret-deplo", "Bearer s3cret-deploy2", "Bearer ", "Basic czNjcmV0",
                          "s3cret-deploy", "Bearer S3CRET-DEPLOY"}) {
    INFO(bad);
    auto out = auth.Authenticate(WithHeader("Authorization", bad));
    CHECK(out.principal == nullptr);
    CHECK(out.failure == AuthFailure::kInvalid);
    CHECK(out.message.find("s3cret") == std::string::npos);  // never echoes the token
  }
  auto none = auth.Authenticate(WithHeader("X-Other", "1"));
  CHECK(none.principal == nullptr);
  CHECK(none.failure == AuthFailure::kMissing);
  CHECK(none.message.find("Bearer") != std::string::npos);
}

TEST_CASE("two Authorization fields authenticate nobody, even when each alone would") {
  const Authenticator auth = TwoTokensAndACert();
  HttpRequest r = WithHeader("Authorization", "Bearer s3cret-deploy");
  r.headers.emplace_back("authorization", "Bearer s3cret-ops");
  const auto out = auth.Authenticate(r);
  CHECK(out.principal == nullptr);
  CHECK(out.failure == AuthFailure::kDuplicate);
  CHECK(out.message.find("2 Authorization fields") != std::string::npos);
  CHECK(out.message.find("s3cret") == std::string::npos);
}

TEST_CASE("a verified client certificate is an identity by its CN, and a token takes precedence") {
  const Authenticator auth = TwoTokensAndACert();
  HttpRequest r = WithHeader("X-Other", "1");
  r.peer_common_name = "backup.example";
  auto cert = auth.Authenticate(r);
  REQUIRE(cert.principal != nullptr);
  CHECK(cert.principal->name == "backup.example");

  r.peer_common_name = "stranger.example";
  auto stranger = auth.Authenticate(r);
  CHECK(stranger.principal == nullptr);
  CHECK(stranger.failure == AuthFailure::kMissing);
  CHECK(stranger.message.find("CN=stranger.example") != std::string::npos);

  HttpRequest both = WithHeader("Authorization", "Bearer s3cret-ops");
  both.peer_common_name = "backup.example";
  auto out = auth.Authenticate(both);
  REQUIRE(out.principal != nullptr);
  CHECK(out.principal->name == "ops");
}

TEST_CASE("etcd's token form (gRPC token metadata) authenticates as a bearer token does, and counts as a field") {
  const Authenticator auth = TwoTokensAndACert();
  Credentials etcd;
  etcd.fields = 1;
  etcd.token = "s3cret-deploy";
  auto deploy = auth.Authenticate(etcd);
  REQUIRE(deploy.principal != nullptr);
  CHECK(deploy.principal->name == "deploy");
  etcd.token = "Bearer s3cret-deploy";  // the token alone: no scheme in front
  CHECK(auth.Authenticate(etcd).failure == AuthFailure::kInvalid);

  Credentials both = etcd;
  both.fields = 2;
  both.fields_name = "credentials (authorization and token metadata)";
  both.token = "s3cret-deploy";
  both.authorization = "Bearer s3cret-ops";
  const auto refused = auth.Authenticate(both);
  CHECK(refused.principal == nullptr);
  CHECK(refused.failure == AuthFailure::kDuplicate);
  CHECK(refused.message.find("2 credentials (authorization and token metadata)") != std::string::npos);
}

TEST_CASE("etcd's Authenticate takes a token entry's name with its token, and nothing else") {
  const Authenticator auth = TwoTokensAndACert();
  const Principal* deploy = auth.AuthenticateToken("deploy", "s3cret-deploy");
  REQUIRE(deploy != nullptr);
  CHECK(deploy->name == "deploy");
  CHECK(auth.AuthenticateToken("ops", "s3cret-deploy") == nullptr);  // another entry's token
  CHECK(auth.AuthenticateToken("deploy", "s3cret-deplo") == nullptr);
  CHECK(auth.AuthenticateToken("backup.example", "") == nullptr);  // a certificate has no token
  CHECK(auth.AuthenticateToken("nobody", "s3cret-ops") == nullptr);
}

TEST_CASE("with no token and no certificate configured, auth is off") {
  CHECK_FALSE(Authenticator(AuthOptions{}).enabled());
}

TEST_SUITE_END();

}  // namespace
}  // namespace kvctl::server
