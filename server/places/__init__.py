"""Place (实地): bed reference frames, ward Wi-Fi fingerprints, hospital geofences, scene evidence."""
