#ifdef CONFIG_Y
#include <linux/y.h>
#endif
#if IS_ENABLED(CONFIG_N)
#include <linux/n.h>
#endif
#if FEATURE_LEVEL > 2
#include <linux/unknown.h>
#else
#include <linux/not-unknown.h>
#endif
#if SOME_MACRO > 2 || CONFIG_NUM * 2 != 8
#include <linux/zero.h>
#endif
#ifdef DEBUG
#include <linux/debug-only.h>
#endif
#ifdef FEATURE
#include <linux/hdr-defined.h>
#endif
#ifdef CC_USING_FENTRY
#include <linux/fentry.h>
#endif
#include <linux/absent.h>
