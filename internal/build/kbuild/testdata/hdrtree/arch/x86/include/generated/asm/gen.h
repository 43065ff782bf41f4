#include <asm-generic/gen.h>
