/* float64 kernels of the avx2 path (see kernels.h). */
#define FS_DTYPE      64
#define FS_ISA_HEADER "isa/avx2.h"
#include "kernels.h"
