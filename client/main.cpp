// claw-client: the command-line client of a Claw broker. Everything is in client/cli.cpp.
#include "client/cli.hpp"

int main(int argc, char** argv) { return claw::client::RunCli(argc, argv); }
