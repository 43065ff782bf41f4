#include <priv.h>
#ifdef WITH_EXTRA
#include "extra.h"
#endif
