/* As include/trace/define_trace.h: only a unit defining CREATE_TRACE_POINTS reads events-impl.h. */
#ifdef CREATE_TRACE_POINTS
#undef CREATE_TRACE_POINTS
#include <trace/events-impl.h>
#define CREATE_TRACE_POINTS
#endif
