"""xwam_ros: X-WAM 4D world-action model as a ROS 2 policy."""
__version__ = "0.1.0"
