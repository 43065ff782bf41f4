#if !defined(_TRACE_EV_H) || defined(TRACE_HEADER_MULTI_READ)
#define _TRACE_EV_H
#endif
#include <trace/define_trace.h>
