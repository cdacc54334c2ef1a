#ifndef TOCSIN_CLIBPQ_SHIM_H
#define TOCSIN_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
