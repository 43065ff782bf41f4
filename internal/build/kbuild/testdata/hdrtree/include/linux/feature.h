/* FEATURE is defined by a header: a test of it stays open */
#define FEATURE
#define FEATURE_LEVEL 3
