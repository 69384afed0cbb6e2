/* float32 kernels of the scalar path (see kernels.h). */
#define FS_DTYPE      32
#define FS_ISA_HEADER "isa/scalar.h"
#include "kernels.h"
