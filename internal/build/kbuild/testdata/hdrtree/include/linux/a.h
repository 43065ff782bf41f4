/* a.h and b.h include each other */
#ifndef _LINUX_A_H
#define _LINUX_A_H
#include <linux/b.h>
#endif
