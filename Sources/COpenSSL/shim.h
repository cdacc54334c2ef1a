#ifndef TOCSIN_COPENSSL_SHIM_H
#define TOCSIN_COPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <openssl/rand.h>
#endif
