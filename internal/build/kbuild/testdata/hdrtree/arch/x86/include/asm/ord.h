/* found first: arch/x86/include comes before include on the -I path */
