"""Place (实地): is a capture's scene the bed's own surroundings?

- `scene`: the scene key frame a device keeps with every face capture, faces blurred, as a small JPEG;
- `features`: local features of a scene (ORB keypoints and descriptors), packed for storage;
- `match`: a scene against a bed's reference frames, by feature matches and a RANSAC homography;
- `cues`: the device's other place signals (Wi-Fi networks in range, a location fix) against the ward's.

Used by the edge client (reference capture, scene frames) and by the server's evidence check.
"""
