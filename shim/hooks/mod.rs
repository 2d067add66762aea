pub fn init_process() {}
