/*
 * kvhost: runs kvserver built as a shared object (-DKV_PLUGIN) that does
 * not link lwkt: its lwkt_* symbols stay undefined until liblwkt.so is
 * preloaded (LD_PRELOAD). Without the preload it does not start.
 */
int kvserver_main(int argc, char **argv);

int main(int argc, char **argv) { return kvserver_main(argc, argv); }
