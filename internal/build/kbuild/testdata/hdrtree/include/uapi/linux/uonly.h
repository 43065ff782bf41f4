/* only in include/uapi */
