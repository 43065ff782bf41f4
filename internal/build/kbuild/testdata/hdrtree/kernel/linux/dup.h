/* "linux/dup.h" from kernel/ */
