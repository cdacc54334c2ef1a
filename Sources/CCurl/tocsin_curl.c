#include "tocsin_curl.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>
#include <pthread.h>

struct tocsin_curl_share {
    CURLSH *handle;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
};

static void share_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *userptr) {
    (void)handle; (void)access;
    tocsin_curl_share *share = (tocsin_curl_share *)userptr;
    pthread_mutex_lock(&share->locks[data]);
}

static void share_unlock(CURL *handle, curl_lock_data data, void *userptr) {
    (void)handle;
    tocsin_curl_share *share = (tocsin_curl_share *)userptr;
    pthread_mutex_unlock(&share->locks[data]);
}

tocsin_curl_share *tocsin_curl_share_new(void) {
    tocsin_curl_share *share = calloc(1, sizeof(*share));
    if (!share) return NULL;
    share->handle = curl_share_init();
    if (!share->handle) { free(share); return NULL; }
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_init(&share->locks[i], NULL);
    curl_share_setopt(share->handle, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(share->handle, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(share->handle, CURLSHOPT_USERDATA, share);
    curl_share_setopt(share->handle, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(share->handle, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share->handle, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    return share;
}

void tocsin_curl_share_free(tocsin_curl_share *share) {
    if (!share) return;
    curl_share_cleanup(share->handle);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_destroy(&share->locks[i]);
    free(share);
}

int tocsin_curl_global_init(void) {
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

typedef struct {
    char *data;
    size_t length;
    size_t limit;
    tocsin_body_callback on_body;
    void *on_body_context;
} buffer;

static size_t write_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
    buffer *b = (buffer *)userdata;
    size_t n = size * nmemb;
    if (b->on_body) return b->on_body(b->on_body_context, ptr, n) == 0 ? n : 0;
    size_t keep = n;
    if (b->length + keep > b->limit) keep = b->limit > b->length ? b->limit - b->length : 0;
    if (keep > 0) {
        char *grown = realloc(b->data, b->length + keep + 1);
        if (!grown) return 0;
        b->data = grown;
        memcpy(b->data + b->length, ptr, keep);
        b->length += keep;
        b->data[b->length] = 0;
    }
    return n; /* consume everything; excess is dropped */
}

typedef struct {
    tocsin_http_response *response;
    buffer headers;
    int collect;
} header_state;

static size_t read_header(char *ptr, size_t size, size_t nitems, void *userdata) {
    header_state *state = (header_state *)userdata;
    tocsin_http_response *r = state->response;
    size_t n = size * nitems;
    if (state->collect) write_body(ptr, size, nitems, &state->headers);
    const char *name = "retry-after:";
    size_t name_length = strlen(name);
    if (n > name_length && strncasecmp(ptr, name, name_length) == 0) {
        size_t start = name_length;
        while (start < n && isspace((unsigned char)ptr[start])) start++;
        size_t end = n;
        while (end > start && isspace((unsigned char)ptr[end - 1])) end--;
        size_t length = end - start;
        if (length >= sizeof(r->retry_after)) length = sizeof(r->retry_after) - 1;
        memcpy(r->retry_after, ptr + start, length);
        r->retry_after[length] = 0;
    }
    return n;
}

void tocsin_http_perform(const tocsin_http_request *request, tocsin_http_response *response) {
    memset(response, 0, sizeof(*response));
    CURL *curl = curl_easy_init();
    if (!curl) {
        response->curl_code = CURLE_FAILED_INIT;
        strncpy(response->error, "cannot initialise libcurl", sizeof(response->error) - 1);
        return;
    }
    buffer body = {NULL, 0, request->max_response_bytes, request->on_body, request->on_body_context};
    header_state header = {response, {NULL, 0, 65536, NULL, NULL}, request->collect_headers};
    struct curl_slist *headers = NULL;
    for (size_t i = 0; i < request->header_count; i++) headers = curl_slist_append(headers, request->headers[i]);
    /* No "Expect: 100-continue" round trip. */
    headers = curl_slist_append(headers, "Expect:");

    char error[CURL_ERROR_SIZE];
    error[0] = 0;
    curl_easy_setopt(curl, CURLOPT_URL, request->url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request->method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, request->connect_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, request->total_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, read_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &header);
    if (request->share) curl_easy_setopt(curl, CURLOPT_SHARE, request->share->handle);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    if (request->body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request->body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)request->body_length);
    }
    CURLcode code = curl_easy_perform(curl);
    response->curl_code = (int)code;
    if (code != CURLE_OK) {
        const char *text = error[0] ? error : curl_easy_strerror(code);
        strncpy(response->error, text, sizeof(response->error) - 1);
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response->status);
    long connects = 0;
    if (curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK) response->reused = connects == 0;
    response->body = body.data;
    response->body_length = body.length;
    response->headers = header.headers.data;
    response->headers_length = header.headers.length;
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
}

void tocsin_http_response_free(tocsin_http_response *response) {
    free(response->body);
    free(response->headers);
    response->body = NULL;
    response->body_length = 0;
    response->headers = NULL;
    response->headers_length = 0;
}

typedef struct {
    const char *data;
    size_t length;
    size_t offset;
} reader;

static size_t read_message(char *ptr, size_t size, size_t nmemb, void *userdata) {
    reader *r = (reader *)userdata;
    size_t room = size * nmemb;
    size_t left = r->length - r->offset;
    size_t n = left < room ? left : room;
    memcpy(ptr, r->data + r->offset, n);
    r->offset += n;
    return n;
}

void tocsin_mail_send(const tocsin_mail_request *request, tocsin_mail_response *response) {
    memset(response, 0, sizeof(*response));
    CURL *curl = curl_easy_init();
    if (!curl) {
        response->curl_code = CURLE_FAILED_INIT;
        strncpy(response->error, "cannot initialise libcurl", sizeof(response->error) - 1);
        return;
    }
    struct curl_slist *recipients = NULL;
    for (size_t i = 0; i < request->recipient_count; i++) recipients = curl_slist_append(recipients, request->recipients[i]);
    reader message = {request->message, request->message_length, 0};
    char error[CURL_ERROR_SIZE];
    error[0] = 0;
    curl_easy_setopt(curl, CURLOPT_URL, request->url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    if (request->username) curl_easy_setopt(curl, CURLOPT_USERNAME, request->username);
    if (request->password) curl_easy_setopt(curl, CURLOPT_PASSWORD, request->password);
    curl_easy_setopt(curl, CURLOPT_MAIL_FROM, request->from);
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, recipients);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_message);
    curl_easy_setopt(curl, CURLOPT_READDATA, &message);
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)request->message_length);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, request->connect_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, request->total_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
    if (request->starttls == 2) curl_easy_setopt(curl, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    else if (request->starttls == 1) curl_easy_setopt(curl, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
    if (request->ca_file) curl_easy_setopt(curl, CURLOPT_CAINFO, request->ca_file);
    CURLcode code = curl_easy_perform(curl);
    response->curl_code = (int)code;
    if (code != CURLE_OK) {
        const char *text = error[0] ? error : curl_easy_strerror(code);
        strncpy(response->error, text, sizeof(response->error) - 1);
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response->smtp_code);
    curl_slist_free_all(recipients);
    curl_easy_cleanup(curl);
}
