import os
from glob import glob

from setuptools import find_packages, setup

package_name = 'xwam_ros'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        (os.path.join('share', package_name, 'launch'), glob('launch/*.launch.py')),
        (os.path.join('share', package_name, 'config'), glob('config/*.yaml') + glob('config/*.xml')),
        (os.path.join('share', package_name, 'rviz'), glob('rviz/*.rviz')),
        (os.path.join('share', package_name, 'foxglove'), glob('foxglove/*.json')),
    ] + [(os.path.join('share', package_name, os.path.dirname(f)), [f])
         for f in glob('models/**/*', recursive=True) if os.path.isfile(f)],
    package_data={package_name: ['assets/**/*']},
    include_package_data=True,
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='xwam_ros maintainers',
    maintainer_email='maintainers@xwam-ros.dev',
    description='X-WAM 4D world-action model as a ROS 2 policy: actions, imagined point clouds, training, bag evaluation.',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'xwam-ros = xwam_ros.cli:main',
            'policy_node = xwam_ros.ros.policy_node:main',
            'camera_source = xwam_ros.ros.camera_source:main',
            'sim_robot = xwam_ros.ros.sim_robot:main',
        ],
    },
)
