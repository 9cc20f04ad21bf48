// kvctl's own small HTTP request/response types. Only http_server.cpp sees
// the transport library; everything else speaks these, so the transport can
// be swapped without touching the API.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvctl::server {

struct HttpRequest {
  std::string method;       // "GET", "PUT", ...
  std::string path;         // raw, still percent-encoded, without the query
  std::string query;        // raw, after '?', without it
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string remote_addr;
  // The subject Common Name of the client's certificate, when the
  // connection is TLS and the certificate was verified against
  // tls.client_ca; "" otherwise.
  std::string peer_common_name;

  // Case-insensitive; the first value, if any.
  std::optional<std::string_view> Header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type;  // empty: no body
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // For the request log only, never sent: the JSON error's code word and,
  // for a server error, its message.
  std::string error_code;
  std::string error_cause;

  void SetHeader(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

}  // namespace kvctl::server
