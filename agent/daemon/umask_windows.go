package daemon

func umask077() {}
