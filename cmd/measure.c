#include "cmd.h"
int cmd_measure(int argc, char **argv) { (void)argc; (void)argv; return EXIT_ERROR; }
