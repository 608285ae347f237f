#ifndef NORBERT_COPENBLAS_SHIM_H
#define NORBERT_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
