/* <linux/dup.h> */
