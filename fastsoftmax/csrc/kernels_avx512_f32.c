/* float32 kernels of the avx512 path (see kernels.h). */
#define FS_DTYPE      32
#define FS_ISA_HEADER "isa/avx512.h"
#include "kernels.h"
