/* generated in a real build; included by core.c */
