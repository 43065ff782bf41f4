#include<linux/a.h>
#include <linux/feature.h>
