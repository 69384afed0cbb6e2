/* float32 kernels of the avx2 path (see kernels.h). */
#define FS_DTYPE      32
#define FS_ISA_HEADER "isa/avx2.h"
#include "kernels.h"
