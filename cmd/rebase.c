#include "cmd.h"
int cmd_rebase(int argc, char **argv) { (void)argc; (void)argv; return EXIT_ERROR; }
