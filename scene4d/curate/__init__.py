"""Video -> annotated Clip: flow, static-camera test, masks, masked SfM, depth, motion, TSDF."""
