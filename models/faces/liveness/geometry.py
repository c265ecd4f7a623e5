"""Measurements on 68-point face landmarks (the iBUG layout; mesh.py maps Face Mesh onto it): eyes, mouth, head
pose, planarity.

Every quantity is a ratio of distances or an angle, so it does not depend on how large the face is in the
frame. Indices are those of the 68-point scheme: 0-16 jaw, 17-26 brows, 27-35 nose, 36-47 eyes (36-41 the
eye on the image's left), 48-67 mouth (60-67 inner lips).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

Points = NDArray[np.float64]  # (68, 2) image coordinates, x right, y down

# Mean 3-D shape of the 68 landmarks (OpenFace's mean face, as used by many head-pose examples), millimetres,
# in camera-aligned axes for a face looking straight at the camera: x to the image's right, y down, z away
# from the camera (the nose tip is nearest). Only the rigid points below are used for the pose.
_MEAN_FACE_3D = np.array([
    [-73.393523, -29.801432, 47.667532], [-72.775014, -10.949766, 45.909403], [-70.533638, 7.929818, 44.84258],
    [-66.850058, 26.07428, 43.141114], [-59.790187, 42.56439, 38.635298], [-48.368973, 56.48108, 30.750622],
    [-34.121101, 67.246992, 18.456453], [-17.875411, 75.056892, 3.609035], [0.098749, 77.061286, -0.881698],
    [17.477031, 74.758448, 5.181201], [32.648966, 66.929021, 19.176563], [46.372358, 56.311389, 30.77057],
    [57.34348, 42.419126, 37.628629], [64.388482, 25.45588, 40.886309], [68.212038, 6.990805, 42.281449],
    [70.486405, -11.666193, 44.142567], [71.375822, -30.365191, 47.140426], [-61.119406, -49.361602, 14.254422],
    [-51.287588, -58.769795, 7.268147], [-37.8048, -61.996155, 0.442051], [-24.022754, -61.033399, -6.606501],
    [-11.635713, -56.686759, -11.967398], [12.056636, -57.391033, -12.051204], [25.106256, -61.902186, -7.315098],
    [38.338588, -62.777713, -1.022953], [51.191007, -59.302347, 5.349435], [60.053851, -50.190255, 11.615746],
    [0.65394, -42.19379, -13.380835], [0.804809, -30.993721, -21.150853], [0.992204, -19.944596, -29.284036],
    [1.226783, -8.414541, -36.94806], [-14.772472, 2.598255, -20.132003], [-7.180239, 4.751589, -23.536684],
    [0.55592, 6.5629, -25.944448], [8.272499, 4.661005, -23.695741], [15.214351, 2.643046, -20.858157],
    [-46.04729, -37.471411, 7.037989], [-37.674688, -42.73051, 3.021217], [-27.883856, -42.711517, 1.353629],
    [-19.648268, -36.754742, -0.111088], [-28.272965, -35.134493, -0.147273], [-38.082418, -34.919043, 1.476612],
    [19.265868, -37.032306, -0.665746], [27.894191, -43.342445, 0.24766], [37.437529, -43.110822, 1.696435],
    [45.170805, -38.086515, 4.894163], [38.196454, -35.532024, 0.282961], [28.764989, -35.484289, -1.172675],
    [-28.916267, 28.612716, -2.24031], [-17.533194, 22.172187, -15.934335], [-6.68459, 19.029051, -22.611355],
    [0.381001, 20.721118, -23.748437], [8.375443, 19.03546, -22.721995], [18.876618, 22.394109, -15.610679],
    [28.794412, 28.079924, -3.217393], [19.057574, 36.298248, -14.987997], [8.956375, 39.634575, -22.554245],
    [0.381549, 40.395647, -23.591626], [-7.428895, 39.836405, -22.406106], [-18.160634, 36.677899, -15.121907],
    [-24.37749, 28.677771, -4.785684], [-6.897633, 25.475976, -20.893742], [0.340663, 26.014269, -22.220479],
    [8.444722, 25.326198, -21.02552], [24.474473, 28.323008, -5.712776], [8.449166, 30.596216, -20.671489],
    [0.205322, 31.408738, -21.90367], [-7.198266, 30.844876, -20.328022],
])

# Points that move with the skull, not with expressions: the jaw contour at ear height, the nose and the eye
# corners. Brows, eyelids, lips and the chin move when the patient blinks, talks or opens the mouth.
RIGID = np.array([0, 1, 2, 14, 15, 16, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 39, 42, 45])

def inter_ocular(points: Points) -> float:
    """Distance between the eye centres, the face's own unit of length."""
    return float(np.linalg.norm(points[36:42].mean(axis=0) - points[42:48].mean(axis=0)))


def eye_aspect_ratio(points: Points) -> float:
    """Mean EAR of both eyes, (|p2-p6| + |p3-p5|) / (2 |p1-p4|) (Soukupová and Čech 2016)."""
    ratios = []
    for start in (36, 42):
        p = points[start:start + 6]
        width = np.linalg.norm(p[0] - p[3])
        if width > 0:
            ratios.append((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2.0 * width))
    return float(np.mean(ratios)) if ratios else 0.0


def mouth_aspect_ratio(points: Points) -> float:
    """Inner-lip opening over mouth width: about 0 closed, 0.3 talking, 0.5 and more wide open."""
    width = np.linalg.norm(points[60] - points[64])
    if width == 0:
        return 0.0
    opening = (np.linalg.norm(points[61] - points[67]) + np.linalg.norm(points[62] - points[66])
               + np.linalg.norm(points[63] - points[65])) / 3.0
    return float(opening / width)


def face_aspect(points: Points) -> float:
    """Nose length over outer eye-corner distance.

    Tilting a photo foreshortens the eyes, the mouth and the nose alike; dividing the eye and mouth ratios by
    this keeps a tilted print from looking like closed eyes, while a real blink leaves it unchanged.
    """
    width = np.linalg.norm(points[36] - points[45])
    return float(np.linalg.norm(points[27] - points[33]) / width) if width > 0 else 0.0


def nose_offsets(points: Points) -> tuple[float, float]:
    """Where the nose tip sits inside the face, a 2-D check on the 3-D pose (which a bad fit can flip).

    Horizontal: across the cheeks (jaw points 1 and 15), 0 centred, > 0 towards the image's right. Vertical:
    from the eye line to the mouth, larger when the head bends down. Both measured along the face's own axes,
    so a tilted head (roll) does not move them.
    """
    eyes_left, eyes_right = points[36:42].mean(axis=0), points[42:48].mean(axis=0)
    across = eyes_right - eyes_left
    span = float(np.linalg.norm(across))
    if span == 0:
        return 0.0, 0.0
    across /= span
    down = np.array([-across[1], across[0]])
    left, right = float(points[1] @ across), float(points[15] @ across)
    horizontal = (float(points[30] @ across) - left) / (right - left) - 0.5 if right != left else 0.0
    eye_mid = (eyes_left + eyes_right) / 2.0
    mouth_mid = (points[48] + points[54]) / 2.0
    height = float((mouth_mid - eye_mid) @ down)
    vertical = float((points[30] - eye_mid) @ down) / height if height > 0 else 0.0
    return horizontal, vertical


@dataclass(frozen=True)
class HeadPose:
    """Where the nose points, in degrees, in image coordinates of the upright frame.

    yaw > 0: towards the image's right edge; pitch > 0: towards the image's top edge (looking up).
    """

    yaw_deg: float
    pitch_deg: float
    roll_deg: float


def head_pose(points: Points, frame_size: tuple[int, int]) -> HeadPose | None:
    """Head pose from the rigid landmarks and the generic 3-D face (cv2.solvePnP, pinhole camera).

    The focal length is taken as the frame's width (a typical tablet or webcam field of view); the angles
    are used as changes from the patient's own neutral pose, so that guess cancels out.
    """
    width, height = frame_size
    camera = np.array([[width, 0.0, width / 2.0], [0.0, width, height / 2.0], [0.0, 0.0, 1.0]])
    try:
        # SQPnP finds the global minimum: the iterative solver flips between two poses of a frontal face.
        ok, rvec, _ = cv2.solvePnP(_MEAN_FACE_3D[RIGID], points[RIGID].astype(np.float64), camera, None,
                                   flags=cv2.SOLVEPNP_SQPNP)
    except cv2.error:
        return None  # degenerate landmarks (all on a line or a point)
    if not ok:
        return None
    rotation, _ = cv2.Rodrigues(rvec)
    forward = rotation @ np.array([0.0, 0.0, -1.0])  # out of the face, through the nose
    yaw = np.degrees(np.arctan2(forward[0], -forward[2]))
    pitch = np.degrees(np.arctan2(-forward[1], -forward[2]))
    right = rotation @ np.array([1.0, 0.0, 0.0])
    roll = np.degrees(np.arctan2(right[1], right[0]))
    return HeadPose(float(yaw), float(pitch), float(roll))


# Eye and mouth corners lie within a few millimetres of one plane on a face; the nose tip stands about
# 40 mm (0.6 of the inter-ocular distance) in front of it.
FACE_PLANE = np.array([36, 39, 42, 45, 48, 54])
NOSE_TIP = 30


def homography_residual(reference: Points, frame: Points) -> NDArray[np.float64]:
    """Where the nose tip of `frame` is, against where the homography of the face plane puts it.

    The homography maps the eye and mouth corners of `reference` onto those of `frame`. On a photo or a screen
    the nose tip is painted on that plane and lands where the homography says; on a head that turned it is
    off by the parallax of its depth. Returns the (x, y) offset over the inter-ocular distance of `frame`.
    """
    matrix, _ = cv2.findHomography(reference[FACE_PLANE].astype(np.float64), frame[FACE_PLANE].astype(np.float64), 0)
    unit = inter_ocular(frame)
    if matrix is None or unit <= 0:
        return np.zeros(2)
    predicted = cv2.perspectiveTransform(reference[[NOSE_TIP]].reshape(-1, 1, 2).astype(np.float64), matrix)
    return np.asarray((frame[NOSE_TIP] - predicted.reshape(2)) / unit, dtype=np.float64)


def nose_depth(reference: Points, frame: Points, yaw_change_deg: float, pitch_change_deg: float) -> float:
    """Depth of the nose tip in front of the face plane, in inter-ocular distances, from the parallax.

    For a head that turned by (yaw, pitch) the nose tip moves off the plane's homography by depth x sin(angle)
    in the direction the nose turned; about 0.6 for a face, about 0 for a photo or a screen.
    """
    direction = np.array([np.sin(np.radians(yaw_change_deg)), -np.sin(np.radians(pitch_change_deg))])
    norm2 = float(direction @ direction)
    if norm2 == 0:
        return 0.0
    return float(homography_residual(reference, frame) @ direction / norm2)
