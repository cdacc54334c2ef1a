#ifndef TOCSIN_CURL_H
#define TOCSIN_CURL_H

#include <stddef.h>

/* Typed wrappers over libcurl: curl_easy_setopt is variadic, which Swift
 * cannot call, so each request is described by a struct and performed here.
 * All calls block; run them on a dedicated thread. */

/* A connection cache (and DNS and TLS session caches) shared by every
 * request given it, from any thread: keep-alive connections are reused per
 * destination instead of one new connection per message. */
typedef struct tocsin_curl_share tocsin_curl_share;
tocsin_curl_share *tocsin_curl_share_new(void);
void tocsin_curl_share_free(tocsin_curl_share *share);

/* Called with each chunk of a response body as it arrives; return non-zero
 * to stop the transfer (the request then ends with curl_code 23). */
typedef int (*tocsin_body_callback)(void *context, const char *data, size_t length);

typedef struct {
    const char *method;          /* "POST", "GET", ... */
    const char *url;
    const char *const *headers;  /* "Name: value" lines */
    size_t header_count;
    const char *body;            /* may be NULL */
    size_t body_length;
    long connect_timeout_ms;
    long total_timeout_ms;
    size_t max_response_bytes;   /* response body kept up to this size */
    tocsin_curl_share *share;    /* may be NULL: no reuse */
    int collect_headers;         /* non-zero: keep the response headers */
    tocsin_body_callback on_body;/* may be NULL: the body is collected */
    void *on_body_context;
} tocsin_http_request;

typedef struct {
    long status;                 /* HTTP status, 0 when no response */
    int curl_code;               /* CURLcode, 0 on success */
    char error[256];             /* curl's error text when curl_code != 0 */
    char retry_after[64];        /* the Retry-After header, if any */
    char *body;                  /* malloc'd, NUL-terminated; free with tocsin_http_response_free */
    size_t body_length;
    char *headers;               /* malloc'd "Name: value\r\n" lines when collect_headers; may be NULL */
    size_t headers_length;
    long reused;                 /* 1 when an existing connection was used */
} tocsin_http_response;

int tocsin_curl_global_init(void);
void tocsin_http_perform(const tocsin_http_request *request, tocsin_http_response *response);
void tocsin_http_response_free(tocsin_http_response *response);

typedef struct {
    const char *url;             /* smtp://host:port or smtps://host:port */
    const char *username;        /* may be NULL */
    const char *password;        /* may be NULL */
    const char *from;            /* envelope sender */
    const char *const *recipients;
    size_t recipient_count;
    const char *message;         /* the full RFC 5322 message, CRLF line ends */
    size_t message_length;
    int starttls;                /* 0 off, 1 when available, 2 required */
    const char *ca_file;         /* PEM bundle to trust instead of the system's; may be NULL */
    long connect_timeout_ms;
    long total_timeout_ms;
} tocsin_mail_request;

typedef struct {
    int curl_code;
    long smtp_code;              /* last SMTP response code */
    char error[256];
} tocsin_mail_response;

void tocsin_mail_send(const tocsin_mail_request *request, tocsin_mail_response *response);

#endif
