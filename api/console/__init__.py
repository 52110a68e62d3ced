"""邻里工作台: the web console, server-rendered pages over the same API the mini programs use."""
