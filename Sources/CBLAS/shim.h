// OpenBLAS's cblas.h lives in its own include folder on Debian; pkg-config supplies it.
#include <cblas.h>
#include <lapacke.h>
